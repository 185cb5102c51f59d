"""What an evaluation adds to a prompt beyond the dataset: the visual memory's evidence and retrieved knowledge.

`PromptAids.build(config, eval_set)` prepares, in a temporary folder, what the run's configuration asks for:

- a visual memory (`reason_iad.memory`) whose bank per category is the dataset's own normal templates (MMAD ships
  them under `train/good`), when the reasoning config shows evidence (`--evidence`), steers injection by the
  anomaly map (`--prior anomaly|mix`) or retrieves by image (then it looks at the memory's most anomalous box);
- a knowledge base (`reason_iad.knowledge`) holding the dataset's `domain_knowledge.json`, searched per image
  (`--knowledge retrieved`): by the image with an image embedder (`--clip`), else by the question's meaning.

`aids.for_image(item, image)` then gives the prompt's pieces for one query image, computed once per image.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from reason_iad.errors import UserError
from reason_iad.eval.reader import KNOWLEDGE_DATASET_ALIASES, KNOWLEDGE_FILE, EvalItem, EvalSet
from reason_iad.eval.run_config import EvalRunConfig

MEMORY_EXEMPLARS = 16  # normal templates per category at most (the first ones, sorted by path)


@dataclass(frozen=True)
class ImageAids:
    """The prompt pieces for one query image."""

    image: Image.Image  # what the model sees (the query, or a copy with the evidence drawn on it)
    evidence: str = ""  # the evidence text line ("" without text evidence)
    patch_prior: Callable | None = None  # boxes -> anomaly per image token (injection prior)
    knowledge: tuple[str, ...] | None = None  # retrieved entries (None: use the dataset's knowledge)
    anomaly: object | None = None  # the visual memory's `AnomalyEvidence` (None without a memory)


@dataclass
class PromptAids:
    """The run's visual memory and/or knowledge base, and a per-image cache of what they give."""

    evidence_mode: str = "none"
    memory: object | None = None  # VisualMemory
    store: object | None = None  # KnowledgeStore
    top_k: int = 3
    folder: tempfile.TemporaryDirectory | None = None
    _cache: dict[str, ImageAids] = field(default_factory=dict)

    @classmethod
    def build(cls, config: EvalRunConfig, eval_set: EvalSet, progress: Callable[[str], None] | None = None):
        """The aids the configuration needs (None when it needs none)."""
        reasoning = config.reasoning
        wants_store = config.knowledge == "retrieved"
        wants_memory = (
            reasoning.evidence != "none"
            or (reasoning.injection_prior != "attention" and reasoning.uses_latents and reasoning.inject)
            or (wants_store and bool(config.retriever))
        )  # image retrieval looks at the memory's box
        if not (wants_memory or wants_store):
            return None
        folder = tempfile.TemporaryDirectory(prefix="reason-iad-eval-")
        aids = cls(evidence_mode=reasoning.evidence, folder=folder)
        try:
            if wants_memory:
                aids.memory = build_memory(Path(folder.name) / "memory", eval_set, progress)
            if wants_store:
                aids.store = build_store(Path(folder.name) / "knowledge", eval_set, config.retriever)
        except BaseException:
            folder.cleanup()
            raise
        return aids

    def for_image(self, item: EvalItem, image: Image.Image) -> ImageAids:
        """The prompt pieces for `item`'s query image (computed on the first question about it)."""
        if item.image not in self._cache:
            self._cache = {item.image: self._compute(item, image)}  # questions come grouped by image
        return self._cache[item.image]

    def _compute(self, item: EvalItem, image: Image.Image) -> ImageAids:
        from reason_iad.pipeline import apply_evidence, focus_of

        shown, line, prior, evidence = image, "", None, None
        if self.memory is not None:
            evidence = self.memory.inspect(image, item.dataset, item.category)
            shown, line, prior, _ = apply_evidence(image, evidence, self.evidence_mode)
        texts = None
        if self.store is not None:
            from reason_iad.knowledge.search import retrieve

            dataset = KNOWLEDGE_DATASET_ALIASES.get(item.dataset, item.dataset)
            texts = retrieve(
                self.store,
                image,
                item.category,
                dataset,
                k=self.top_k,
                include_normal=True,
                question=item.question.text,
                focus=focus_of(evidence),
            ).texts
        return ImageAids(shown, line, prior, texts, evidence)

    def close(self) -> None:
        """Remove the temporary memory and knowledge base."""
        self._cache.clear()
        if self.folder is not None:
            self.folder.cleanup()
            self.folder = None


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
    """A knowledge base holding the dataset's `domain_knowledge.json` (image embedder `retriever`, if any)."""
    from reason_iad.knowledge.embedders import make_embedder
    from reason_iad.knowledge.store import KnowledgeStore
    from reason_iad.knowledge.transfer import read_import_file

    path = eval_set.root / KNOWLEDGE_FILE
    if not path.is_file():
        raise UserError(f"--knowledge retrieved needs {path}")
    entries, refused = read_import_file(path, author="eval")
    if not entries:
        raise UserError(f"{path} holds no usable knowledge entries ({len(refused)} refused)")
    image_embedder = make_embedder(retriever) if retriever else None
    return KnowledgeStore(uri, make_embedder("minilm"), image_embedder, seed=entries)
