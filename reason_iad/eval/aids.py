"""The evaluation's `Pipeline`: the run's model over the dataset's own visual memory and knowledge base.

`open_run_pipeline(config, eval_set)` prepares, in a temporary folder, what the run's configuration asks for, and
wraps it in the same `Pipeline` the studio and `infer` use (so a question is answered the same way everywhere):

- a visual memory (`reason_iad.memory`) whose bank per category is the dataset's own normal templates (MMAD ships
  them under `train/good`), when the reasoning config shows evidence (`--evidence`), steers injection by the
  anomaly map (`--prior anomaly|mix`) or retrieves by image (then it looks at the memory's most anomalous box);
- a knowledge base (`reason_iad.knowledge`) holding the dataset's `domain_knowledge.json`, searched per question
  (`--knowledge retrieved`): by the image with an image embedder (`--clip`), else by the question's meaning.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reason_iad.config import AppConfig
from reason_iad.errors import UserError
from reason_iad.eval.reader import KNOWLEDGE_DATASET_ALIASES, KNOWLEDGE_FILE, EvalSet
from reason_iad.eval.run_config import EvalRunConfig

MEMORY_EXEMPLARS = 16  # normal templates per category at most (the first ones, sorted by path)


def wants_memory(config: EvalRunConfig) -> bool:
    """Whether the run consults a visual memory (evidence shown, anomaly-steered injection, or image retrieval)."""
    reasoning = config.reasoning
    return (
        reasoning.evidence != "none"
        or (reasoning.injection_prior != "attention" and reasoning.uses_latents and reasoning.inject_patches)
        or (config.knowledge == "retrieved" and bool(config.retriever))
    )  # image retrieval looks at the memory's box


def app_config(config: EvalRunConfig) -> AppConfig:
    """The run's application configuration, its visual memory on exactly when the run consults one."""
    return dataclasses.replace(config.app, memory=dataclasses.replace(config.app.memory, enabled=wants_memory(config)))


@dataclass
class RunPipeline:
    """The run's `Pipeline` and the temporary folder of its memory and knowledge base (removed by `close`)."""

    pipeline: object  # reason_iad.pipeline.Pipeline
    folder: tempfile.TemporaryDirectory | None = None

    @property
    def db(self) -> Path | None:
        """The database folder holding the run's memory and knowledge base (None when it needs neither)."""
        return Path(self.folder.name) / "db" if self.folder is not None else None

    def close(self) -> None:
        """Remove the temporary memory and knowledge base."""
        if self.folder is not None:
            self.folder.cleanup()
            self.folder = None


def open_run_pipeline(
    config: EvalRunConfig, eval_set: EvalSet, backend=None, progress: Callable[[str], None] | None = None
) -> RunPipeline:
    """Load the model (unless `backend` is given) and build the memory / knowledge base the run uses."""
    from reason_iad.pipeline import Pipeline

    if backend is None:
        from reason_iad.backends import load_backend

        backend = load_backend(config.backend)
    settings = app_config(config)
    if not (settings.memory.enabled or config.knowledge == "retrieved"):
        return RunPipeline(Pipeline(backend, settings))
    folder = tempfile.TemporaryDirectory(prefix="reason-iad-eval-")
    db = Path(folder.name) / "db"  # one database, laid out as the studio's: `infer --db` or the studio can open it
    try:
        memory = build_memory(db, eval_set, progress) if settings.memory.enabled else None
        store = build_store(db, eval_set, config.retriever) if config.knowledge == "retrieved" else None
    except BaseException:
        folder.cleanup()
        raise
    return RunPipeline(Pipeline(backend, settings, store=store, memory=memory), folder)


def build_memory(uri: Path, eval_set: EvalSet, progress: Callable[[str], None] | None = None):
    """A visual memory with each category's normal templates (at most `MEMORY_EXEMPLARS`) as its exemplars."""
    from reason_iad.memory.detector import VisualMemory

    pairs = sorted({(item.dataset, item.category) for item in eval_set.items})
    bare = [f"{d}/{c}" for d, c in pairs if len(eval_set.normal_images.get((d, c), ())) < 2]
    if bare:
        raise UserError(
            f"the visual memory needs at least 2 normal templates per category; none or one for "
            f"{', '.join(bare)} (use --evidence none, --prior attention, no image retriever)"
        )
    memory = VisualMemory(uri)
    for done, (dataset, category) in enumerate(pairs):
        if progress:
            progress(f"visual memory: {dataset}/{category} ({done + 1} of {len(pairs)})")
        paths = eval_set.normal_images[(dataset, category)][:MEMORY_EXEMPLARS]
        memory.add_exemplars(dataset, category, [str(p) for p in paths])
    return memory


def build_store(uri: Path, eval_set: EvalSet, retriever: str):
    """A knowledge base holding the dataset's `domain_knowledge.json` (image embedder `retriever`, if any).

    Entries are stored under the datasets the questions name (MMAD's knowledge says `MVTec` for `DS-MVTec`).
    """
    from reason_iad.knowledge.embedders import make_embedder
    from reason_iad.knowledge.store import KnowledgeStore
    from reason_iad.knowledge.transfer import read_import_file

    path = eval_set.root / KNOWLEDGE_FILE
    if not path.is_file():
        raise UserError(f"--knowledge retrieved needs {path}")
    entries, refused = read_import_file(path, author="eval")
    if not entries:
        raise UserError(f"{path} holds no usable knowledge entries ({len(refused)} refused)")
    entries = under_item_datasets(entries, {item.dataset for item in eval_set.items})
    image_embedder = make_embedder(retriever) if retriever else None
    return KnowledgeStore(uri, make_embedder("minilm"), image_embedder, seed=entries)


def under_item_datasets(entries: list, datasets: set[str]) -> list:
    """Entries renamed to the question datasets that alias their dataset (copied when several do)."""
    aliased: dict[str, list[str]] = defaultdict(list)
    for dataset in sorted(datasets):
        target = KNOWLEDGE_DATASET_ALIASES.get(dataset, dataset)
        if target != dataset:
            aliased[target].append(dataset)
    out = []
    for entry in entries:
        names = aliased.get(entry.dataset)
        if not names or entry.dataset in datasets:
            out.append(entry)
        names = [n for n in names or () if n != entry.dataset]
        for name in names:
            renamed = entry.id if len(names) == 1 and entry.dataset not in datasets else f"{name}/{entry.id}"
            out.append(entry.model_copy(update={"dataset": name, "id": renamed}))
    return out
