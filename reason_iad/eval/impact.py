"""What does a knowledge edit change? The category's questions answered under two knowledge versions, compared.

`check_impact(pipeline, eval_set, from_version, to_version)` answers an MMAD-format set's questions through the
studio's own `Pipeline` (its knowledge base, visual memory and model) twice: once retrieving from each knowledge
version (read-only views, `KnowledgeStore.at_version`). It first computes every question's retrieval under both
versions (cheap), then runs the model only for prompts it has not answered before: answers are cached in the
table `impact_answers` beside the knowledge base (`impact_cache.py`), keyed by the model, the settings, the
knowledge texts put in the prompt, the image, the template and the question. A question whose retrieved texts
are the same under both versions cannot flip and is answered once; after a small edit only the questions whose
retrieval the edit changed run again. The `ImpactReport` holds every answer, accuracy per subtask before and
after, and the flipped answers; `impact_report.py` renders it (table, plotly figure, JSON, files).
The check never writes the knowledge table (only the answer cache, and the visual memory's lazy SynthIAD banks).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reason_iad.config import AppConfig, KnowledgeConfig, with_model_defaults
from reason_iad.errors import UserError
from reason_iad.eval.impact_cache import AnswerCache, answer_key, knowledge_hash, settings_digest
from reason_iad.eval.reader import KNOWLEDGE_DATASET_ALIASES, EvalItem, EvalSet, lists_templates, read_eval_set
from reason_iad.mmad import SUBTASKS

IMPACT_MODES: tuple[str, ...] = ("knowledge", "full")
HELD_OUT_SEED = 31  # the studio's default evaluation set: apart from training (1000) and the test split (7)
Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(frozen=True)
class QuestionImpact:
    """One question's answer under each version (letters; None: no read-out) and whether its knowledge changed."""

    id: str
    image: str
    image_path: str
    subtask: str
    question: str
    options: dict[str, str]
    correct: str
    before: str | None
    after: str | None
    same_knowledge: bool  # the same texts were retrieved under both versions (the answer cannot flip)

    @property
    def flipped(self) -> bool:
        """Whether the answer differs between the versions."""
        return self.before != self.after

    @property
    def kind(self) -> str:
        """`fixed` (wrong -> right), `broken` (right -> wrong), `changed` (wrong -> another wrong) or `same`."""
        if not self.flipped:
            return "same"
        was, now = self.before == self.correct, self.after == self.correct
        return "fixed" if now and not was else "broken" if was and not now else "changed"


@dataclass(frozen=True)
class SubtaskImpact:
    """Correct answers of one subtask (or `all`) under each version."""

    subtask: str
    questions: int
    before_correct: int
    after_correct: int

    @property
    def before_accuracy(self) -> float:
        """Fraction correct under the 'from' version."""
        return self.before_correct / self.questions

    @property
    def after_accuracy(self) -> float:
        """Fraction correct under the 'to' version."""
        return self.after_correct / self.questions

    @property
    def change(self) -> float:
        """Accuracy change in percentage points."""
        return 100 * (self.after_accuracy - self.before_accuracy)


@dataclass(frozen=True)
class ImpactReport:
    """The impact of going from one knowledge version to another on a set of questions."""

    scope: str  # the dataset/category pairs asked, e.g. "SynthIAD/carpet"
    from_version: int
    to_version: int
    mode: str
    model: str
    questions: tuple[QuestionImpact, ...]
    answered: int  # prompts the model answered in this check
    cached: int  # prompts found in the cache
    seconds: float

    @property
    def flips(self) -> tuple[QuestionImpact, ...]:
        """The questions whose answer changed."""
        return tuple(q for q in self.questions if q.flipped)

    @property
    def subtasks(self) -> tuple[SubtaskImpact, ...]:
        """Per subtask in MMAD's order (unknown tags last), then `all`."""
        order = {name: i for i, name in enumerate(SUBTASKS)}
        names = sorted({q.subtask for q in self.questions}, key=lambda n: (order.get(n, len(order)), n))
        groups = [(name, [q for q in self.questions if q.subtask == name]) for name in names]
        return tuple(_tally(name, group) for name, group in [*groups, ("all", list(self.questions))])

    def to_dict(self) -> dict:
        """JSON-ready data: the summary, the subtask rows, every question (flips marked)."""
        return {
            "scope": self.scope,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "mode": self.mode,
            "model": self.model,
            "answered": self.answered,
            "cached": self.cached,
            "seconds": round(self.seconds, 3),
            "subtasks": [
                dataclasses.asdict(s) | {"before_accuracy": s.before_accuracy, "after_accuracy": s.after_accuracy}
                for s in self.subtasks
            ],
            "flips": [q.id for q in self.flips],
            "questions": [dataclasses.asdict(q) | {"flipped": q.flipped, "kind": q.kind} for q in self.questions],
        }


def _tally(name: str, group: Sequence[QuestionImpact]) -> SubtaskImpact:
    return SubtaskImpact(
        name, len(group), sum(q.before == q.correct for q in group), sum(q.after == q.correct for q in group)
    )


# ---------------------------------------------------------------------------------------------- inputs
def impact_config(db: str, backend, text_embedder: str | None = None, image_embedder: str | None = None) -> AppConfig:
    """The studio's configuration for a model over the knowledge base at `db` (opened with its recorded embedders)."""
    from reason_iad.knowledge import follow_store

    config = with_model_defaults(AppConfig(backend=backend, knowledge=KnowledgeConfig(db_uri=db)))
    return dataclasses.replace(config, knowledge=follow_store(config.knowledge, text_embedder, image_embedder))


def read_impact_set(data: str | Path, category: str | None = None, skip_missing: bool = False) -> EvalSet:
    """The questions of one category (`name` or `dataset/name`; None: all) of an MMAD-format set, as `eval` reads them.

    One-shot with the set's templates when it lists any (zero-shot otherwise).
    """
    shots = 1 if lists_templates(data) else 0
    categories = (category,) if category else ()
    return read_eval_set(data, shots=shots, knowledge="none", categories=categories, skip_missing=skip_missing)


def resolve_version(store, version: int | str) -> int:
    """A version number or tag name of the knowledge base, checked to exist."""
    text = str(version).strip()
    tags = store.tags()
    number = tags[text] if text in tags else int(text) if text.lstrip("-").isdigit() else None
    if number is None:
        raise UserError(f"unknown knowledge version {text!r}: give a version number or a tag ({_names(tags)})")
    store.at_version(number)  # raises for an unknown version
    return number


def default_versions(store) -> tuple[int, int]:
    """(the version before the last recorded edit, the latest version); one recorded version: (latest, latest)."""
    changes = store.changes()
    latest = store.version
    return (changes[-2].version if len(changes) >= 2 else latest), latest


def _names(tags: dict) -> str:
    return ", ".join(sorted(tags)) or "none defined"


def load_impact_pipeline(config: AppConfig):
    """`Pipeline.load(config)` over an existing knowledge base; a model that cannot load is one `UserError`."""
    from reason_iad.pipeline import Pipeline

    try:
        return Pipeline.load(config)
    except UserError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise UserError(f"cannot load the model {config.backend.model!r}: {err}") from err


def require_knowledge_base(uri: str) -> None:
    """Refuse a database without a knowledge base (a check compares versions of an existing one, never makes one)."""
    from reason_iad.knowledge import recorded_embedders

    if recorded_embedders(uri) is None:
        raise UserError(f"no knowledge base at {uri}: point --db at the studio's knowledge base")


def held_out_set(
    dataset: str | None, category: str, folder: Path | None = None, progress: Progress | None = None
) -> Path:
    """A held-out synthetic MMAD-format set of one SynthIAD category (seed 31), built on first use under `folder`."""
    from reason_iad.paths import default_data_dir
    from reason_iad.synth import CATEGORIES, DATASET, generate_dataset

    if category not in CATEGORIES or dataset not in (None, DATASET):
        raise UserError(
            f"{dataset + '/' if dataset else ''}{category} is not a SynthIAD category: give the folder of an "
            "MMAD-format set with its questions"
        )
    root = (folder or default_data_dir() / "impact-sets") / f"synthiad-seed{HELD_OUT_SEED}-{category}"
    if not (root / "mmad.json").is_file():
        report = (lambda done, total: progress("building the evaluation set", done, total)) if progress else None
        generate_dataset(
            root, seed=HELD_OUT_SEED, per_category=4, templates=8, categories=[category], force=True, progress=report
        )
    return root


# ---------------------------------------------------------------------------------------------- the check
def check_impact(
    pipeline,
    eval_set: EvalSet,
    from_version: int,
    to_version: int,
    mode: str = "knowledge",
    progress: Progress | None = None,
) -> ImpactReport:
    """Answer the set's questions under both knowledge versions (cached; see the module doc) and compare."""
    started = time.perf_counter()
    if pipeline.store is None:
        raise UserError("no knowledge base is loaded")
    if mode not in IMPACT_MODES:
        raise UserError(f"an impact check puts knowledge in the prompt: mode {' or '.join(IMPACT_MODES)}")
    versions = (int(from_version), int(to_version))
    views = {v: pipeline.store.at_version(v) for v in versions}  # read-only; raises for an unknown version
    items = store_items(eval_set.items, pipeline.store, versions)
    base = answering_pipeline(pipeline, mode)
    runners = {v: dataclasses.replace(base, store=view) for v, view in views.items()}
    texts = _retrievals(base, runners, items, versions, progress)
    digest = settings_digest(base, items)
    fingerprints: dict[Path, str] = {}
    keys = {(item.id, v): answer_key(digest, item, texts[item.id, v], fingerprints) for item in items for v in versions}
    cache = AnswerCache(pipeline.store.uri)
    records = cache.get(keys.values())
    todo: dict[str, tuple[int, EvalItem]] = {}
    for item in items:
        for v in versions:
            if keys[item.id, v] not in records:
                todo.setdefault(keys[item.id, v], (v, item))
    cached = len(set(keys.values())) - len(todo)
    records |= _answer(runners, todo, texts, cache, progress)
    questions = tuple(
        _question(item, records[keys[item.id, versions[0]]], records[keys[item.id, versions[1]]], texts, versions)
        for item in items
    )
    scope = ", ".join(sorted({f"{i.dataset}/{i.category}" for i in items}))
    model = str(getattr(pipeline.backend, "name", "") or pipeline.config.backend.model)
    return ImpactReport(scope, *versions, mode, model, questions, len(todo), cached, time.perf_counter() - started)


def answering_pipeline(pipeline, mode: str):
    """The pipeline with the check's settings: `mode`, no rationale (the read-out letter is what is compared)."""
    reasoning = dataclasses.replace(pipeline.config.reasoning, mode=mode, rationale="none")
    return dataclasses.replace(pipeline, config=dataclasses.replace(pipeline.config, reasoning=reasoning))


def store_items(items: Sequence[EvalItem], store, versions: Sequence[int]) -> list[EvalItem]:
    """The items under the dataset names the knowledge base uses (MMAD's `DS-MVTec` is `MVTec`).

    Raises:
        UserError: A category the knowledge base holds no entries of under either version.
    """
    pairs = {(s.entry.dataset, s.entry.category) for v in set(versions) for s in store.list(version=v)}
    out, absent = [], set()
    for item in items:
        alias = KNOWLEDGE_DATASET_ALIASES.get(item.dataset, item.dataset)
        if (item.dataset, item.category) not in pairs and (alias, item.category) in pairs:
            item = dataclasses.replace(item, dataset=alias)
        if (item.dataset, item.category) not in pairs:
            absent.add(f"{item.dataset}/{item.category}")
        out.append(item)
    if absent:
        named = " or ".join(f"v{v}" for v in sorted(set(versions)))
        raise UserError(f"the knowledge base has no entries for {', '.join(sorted(absent))} in {named}")
    return out


def _retrievals(base, runners: dict, items: Sequence[EvalItem], versions, progress) -> dict:
    """{(question id, version): prompt texts} as each version's inspection would retrieve them."""
    from reason_iad.images import load_image
    from reason_iad.pipeline import focus_of

    texts: dict[tuple[str, int], tuple[str, ...]] = {}
    memo: dict[tuple, tuple[str, ...]] = {}
    image, image_key, focus = None, None, None
    for done, item in enumerate(items):
        if item.image != image_key:
            image, image_key = load_image(item.image_path, str(item.image_path)), item.image
            focus = focus_of(base.anomaly(image, item.category, item.dataset))  # as `inspect_stream` looks
        for v in versions:
            runner = runners[v]
            question = None if runner.store.image_embedder is not None else item.question.text
            found = memo.get((item.image, question, v))
            if found is None:
                retrieval = runner.retrieval(image, item.category, item.dataset, item.question, focus=focus)
                found = memo[item.image, question, v] = retrieval.texts
            texts[item.id, v] = found
        if progress:
            progress("retrieving knowledge", done + 1, len(items))
    return texts


def _answer(runners: dict, todo: dict, texts: dict, cache, progress) -> dict:
    """Answer the prompts in `todo` ({key: (version, item)}) with `answer_items`, caching them in batches."""
    from reason_iad.eval.answering import answer_items

    records, batch, done = {}, [], 0
    for version, runner in runners.items():
        wanted = [(key, item) for key, (v, item) in todo.items() if v == version]
        for (key, item), record in zip(wanted, answer_items(runner, [item for _, item in wanted], {}), strict=True):
            records[key] = record
            batch.append((key, knowledge_hash(texts[item.id, version]), record))
            done += 1
            if progress:
                progress("answering", done, len(todo))
            if len(batch) >= 16:
                cache.put(batch)
                batch = []
    cache.put(batch)
    return records


def _question(item: EvalItem, before, after, texts: dict, versions) -> QuestionImpact:
    return QuestionImpact(
        id=item.id,
        image=item.image,
        image_path=str(item.image_path),
        subtask=item.subtask,
        question=item.question.text,
        options=dict(item.question.options),
        correct=item.answer,
        before=before.readout_answer,
        after=after.readout_answer,
        same_knowledge=texts[item.id, versions[0]] == texts[item.id, versions[1]],
    )
