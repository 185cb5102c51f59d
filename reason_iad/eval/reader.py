"""Read an MMAD-layout dataset into typed evaluation items, one per question.

Layout (../shared/reference/ecosystem.md §1): `ROOT/mmad.json` maps an image path relative to ROOT
(`<dataset>/<category>/...`) to its record; `ROOT/domain_knowledge.json` maps dataset -> category -> key -> text.
Peers' files that carry only some fields (no templates, only Anomaly Detection questions) are read too.
`read_eval_set(root, ...)` validates everything up front: a bad file, an unknown filter or missing images
raise one `UserError` before anything runs (or missing images are skipped and counted with `skip_missing`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pydantic import ValidationError

from reason_iad.errors import UserError
from reason_iad.eval.masks import resolve_mask_path
from reason_iad.mmad import SUBTASKS, MMADRecord, image_dataset_and_category, is_normal_image, load_mmad
from reason_iad.reasoning.prompt import Question

MMAD_FILE = "mmad.json"
KNOWLEDGE_FILE = "domain_knowledge.json"
OBJECT_ANALYSIS = "Object Analysis"
OBJECT_TAGS = ("Object Structure", "Object Details")
KNOWLEDGE_DATASET_ALIASES = {"DS-MVTec": "MVTec", "MVTec-AD": "MVTec"}  # MMAD's scripts map these to `MVTec`
SHOWN_MISSING = 5


@dataclass(frozen=True)
class EvalItem:
    """One question about one query image, with everything needed to ask and score it."""

    image: str  # the MMAD key: image path relative to the data root
    question_index: int  # position in the image's conversation
    question: Question
    answer: str  # the correct letter
    subtask: str  # the MMAD `type` tag
    dataset: str
    category: str
    is_normal: bool
    image_path: Path
    template: str | None = None  # the one-shot template's key (None: zero-shot)
    template_path: Path | None = None
    mask_path: Path | None = None  # the ground-truth mask of a defective image (None: none or not found)

    @property
    def id(self) -> str:
        """A stable identifier: `<image key>#<question index>`."""
        return f"{self.image}#{self.question_index}"


@dataclass(frozen=True)
class EvalSet:
    """The questions of a dataset after filters, in a fixed order (image key, then question index)."""

    root: Path
    items: tuple[EvalItem, ...]
    knowledge: dict[tuple[str, str], tuple[str, ...]]  # (dataset, category) -> entries; empty without knowledge
    skipped_images: tuple[str, ...] = ()  # missing images (or templates) skipped with `skip_missing`
    normal_images: dict[tuple[str, str], tuple[Path, ...]] = field(default_factory=dict)  # every template on disk


def resolve_data(data: str | Path) -> tuple[Path, Path]:
    """The data root and its `mmad.json`; `data` is the root folder or the JSON file itself."""
    path = Path(data).expanduser()
    if not path.exists():
        raise UserError(f"data root not found: {path}")
    if path.is_file():
        return path.resolve().parent, path.resolve()
    mmad = path / MMAD_FILE
    if not mmad.is_file():
        raise UserError(f"{path} has no {MMAD_FILE}: pass the folder that holds it (or the JSON file itself)")
    return path.resolve(), mmad.resolve()


def load_records(mmad_path: Path) -> dict[str, MMADRecord]:
    """Validate an MMAD file; any problem becomes one line naming the entry."""
    try:
        records = load_mmad(mmad_path)
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read {mmad_path}: {err}") from err
    except json.JSONDecodeError as err:
        raise UserError(f"{mmad_path} is not valid JSON: {err}") from err
    except ValidationError as err:
        first = err.errors()[0]
        where = "/".join(str(part) for part in first["loc"]) or "(top level)"
        raise UserError(f"{mmad_path}: entry {where}: {first['msg']} ({err.error_count()} problem(s))") from err
    if not records:
        raise UserError(f"{mmad_path} holds no images")
    for key in records:
        check_key(key, mmad_path)
    return records


def lists_templates(data: str | Path) -> bool:
    """Whether the MMAD file of `data` names any normal template image (a peer's file may name none)."""
    _, mmad_path = resolve_data(data)
    return any(r.random_templates or r.similar_templates for r in load_records(mmad_path).values())


def check_key(key: str, source: Path) -> None:
    """Refuse keys that are not `<dataset>/<category>/...` paths inside the root."""
    parts = PurePosixPath(key).parts
    if PurePosixPath(key).is_absolute() or ".." in parts or "\\" in key:
        raise UserError(f"{source}: image path {key!r} must be relative to the data root, without '..'")
    if len(parts) < 3:
        raise UserError(f"{source}: image path {key!r} needs at least <dataset>/<category>/<file>")


def normalise_subtasks(subtasks: Sequence[str]) -> frozenset[str]:
    """MMAD `type` tags chosen by name (case, `-` and `_` ignored); `Object Analysis` means both object tags."""
    known = {_simple(tag): tag for tag in SUBTASKS}
    chosen: set[str] = set()
    for name in subtasks:
        simple = _simple(name)
        if simple == _simple(OBJECT_ANALYSIS):
            chosen.update(OBJECT_TAGS)
        elif simple in known:
            chosen.add(known[simple])
        else:
            raise UserError(f"unknown subtask {name!r}; choose from {', '.join((*SUBTASKS, OBJECT_ANALYSIS))}")
    return frozenset(chosen)


def _simple(name: str) -> str:
    return " ".join(name.replace("_", " ").replace("-", " ").lower().split())


def select_images(records: dict[str, MMADRecord], categories: Sequence[str]) -> list[str]:
    """Image keys of the chosen categories (`category` or `dataset/category`), sorted; all when none chosen."""
    keys = sorted(records)
    if not categories:
        return keys
    pairs = {image_dataset_and_category(key) for key in keys}
    wanted: set[tuple[str, str]] = set()
    for name in categories:
        matches = {p for p in pairs if name in (p[1], f"{p[0]}/{p[1]}")}
        if not matches:
            available = ", ".join(sorted({c for _, c in pairs}))
            raise UserError(f"unknown category {name!r}; this dataset has: {available}")
        wanted |= matches
    return [key for key in keys if image_dataset_and_category(key) in wanted]


def _template(record: MMADRecord, shots: int, similar: bool) -> str | None:
    if shots == 0:
        return None
    templates = record.similar_templates if similar else record.random_templates
    return templates[0] if templates else None


def _build_items(root: Path, key: str, record: MMADRecord, template: str | None, subtasks) -> list[EvalItem]:
    dataset, category = image_dataset_and_category(key)
    mask = None if is_normal_image(key) else resolve_mask_path(root, key, record.mask_path)
    items = []
    for index, question in enumerate(record.conversation):
        if subtasks and question.type not in subtasks:
            continue
        try:
            asked = Question(question.question, tuple(question.options.items()))
        except UserError as err:
            raise UserError(f"{key}, question {index + 1}: {err}") from err
        items.append(
            EvalItem(
                image=key,
                question_index=index,
                question=asked,
                answer=question.answer,
                subtask=question.type,
                dataset=dataset,
                category=category,
                is_normal=is_normal_image(key),
                image_path=root / key,
                template=template,
                template_path=None if template is None else root / template,
                mask_path=mask,
            )
        )
    return items


def _missing(root: Path, key: str, template: str | None, shots: int, source: Path) -> str | None:
    """Why this image cannot be asked (None when it can)."""
    if not (root / key).is_file():
        return key
    if shots and template is None:
        return f"{key} (no template for one-shot)"
    if template is not None:
        check_key(template, source)
        if not (root / template).is_file():
            return f"{key} (template {template})"
    return None


def _refuse_missing(missing: list[str], total: int, root: Path) -> None:
    shown = "; ".join(missing[:SHOWN_MISSING]) + (
        f"; and {len(missing) - SHOWN_MISSING} more" if len(missing) > SHOWN_MISSING else ""
    )
    raise UserError(
        f"{len(missing)} of {total} images are missing under {root}: {shown}. Pass --skip-missing to skip them"
    )


def _refuse_all_skipped(missing: list[str], root: Path, mmad_path: Path) -> None:
    """Every image was skipped (`skip_missing`): say how many are missing where, with an example path."""
    images = [m for m in missing if " (" not in m]  # the others have their image but not their template
    if len(images) == len(missing):
        raise UserError(
            f"all {len(missing)} images are missing under {root} (e.g. {root / images[0]}); pass the "
            f"folder the image paths of {mmad_path.name} are relative to"
        )
    example = f"{root / images[0]}" if images else missing[0]
    raise UserError(
        f"none of the {len(missing)} images can be asked: {len(images)} are missing under {root} and "
        f"{len(missing) - len(images)} lack their one-shot template (e.g. {example}); try --shots 0"
    )


def read_eval_set(
    data: str | Path,
    *,
    shots: int = 1,
    similar_template: bool = False,
    knowledge: str = "none",
    categories: Sequence[str] = (),
    subtasks: Sequence[str] = (),
    skip_missing: bool = False,
) -> EvalSet:
    """Read and check an MMAD-layout dataset.

    Args:
        data: The data root (holding `mmad.json`) or the `mmad.json` file; image paths are relative to its folder.
        shots: 0 (zero-shot) or 1 (one normal template per image).
        similar_template: Take the first `similar_templates` entry instead of the first `random_templates` one.
        knowledge: `none` or `all` (every entry of the image's category in `domain_knowledge.json`).
        categories: Keep only these categories (`name` or `dataset/name`); all when empty.
        subtasks: Keep only these MMAD subtasks; all when empty.
        skip_missing: Skip images whose file (or one-shot template) is missing instead of refusing the set.

    Returns:
        The `EvalSet`, items ordered by image key then question index.

    Raises:
        UserError: Missing root or file, malformed JSON, unknown filters, missing images, missing knowledge.
    """
    if shots not in (0, 1):
        raise UserError(f"shots must be 0 or 1, not {shots}")
    root, mmad_path = resolve_data(data)
    records = load_records(mmad_path)
    chosen_subtasks = normalise_subtasks(subtasks)
    keys = select_images(records, categories)
    items: list[EvalItem] = []
    missing: list[str] = []
    for key in keys:
        template = _template(records[key], shots, similar_template)
        problem = _missing(root, key, template, shots, mmad_path)
        if problem is not None:
            missing.append(problem)
            continue
        items += _build_items(root, key, records[key], template, chosen_subtasks)
    if missing and not skip_missing:
        _refuse_missing(missing, len(keys), root)
    if missing and len(missing) == len(keys):
        _refuse_all_skipped(missing, root, mmad_path)
    if not items:
        raise UserError(f"no questions to ask in {mmad_path} with the chosen categories and subtasks")
    pairs = sorted({(item.dataset, item.category) for item in items})
    entries = load_knowledge(root, pairs) if knowledge == "all" else {}
    return EvalSet(
        root=root,
        items=tuple(items),
        knowledge=entries,
        skipped_images=tuple(missing),
        normal_images=normal_images(root, records, keys),
    )


def normal_images(
    root: Path, records: dict[str, MMADRecord], keys: Sequence[str]
) -> dict[tuple[str, str], tuple[Path, ...]]:
    """Per (dataset, category): every normal template the chosen records name that exists under `root`, sorted."""
    found: dict[tuple[str, str], set[Path]] = {}
    for key in keys:
        record = records[key]
        for template in {*record.random_templates, *record.similar_templates}:
            path = (root / template).resolve()
            if root in path.parents and path.is_file():
                found.setdefault(image_dataset_and_category(key), set()).add(path)
    return {pair: tuple(sorted(paths)) for pair, paths in sorted(found.items())}


def load_knowledge(root: Path, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, ...]]:
    """MMAD's knowledge mode: all entries of each (dataset, category), in file order, from `domain_knowledge.json`."""
    path = root / KNOWLEDGE_FILE
    if not path.is_file():
        raise UserError(
            f"--knowledge all needs {path}; for a dataset without it use --mode latent or plain (no "
            "knowledge in the prompt)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read {path}: {err}") from err
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected dataset -> category -> key -> text")
    found, absent = {}, []
    for dataset, category in pairs:
        categories = data.get(dataset, data.get(KNOWLEDGE_DATASET_ALIASES.get(dataset, dataset)))
        entries = categories.get(category) if isinstance(categories, dict) else None
        if not isinstance(entries, dict) or not entries:
            absent.append(f"{dataset}/{category}")
            continue
        texts = tuple(str(text) for text in entries.values() if isinstance(text, str) and text.strip())
        if len(texts) != len(entries):
            raise UserError(f"{path}: {dataset}/{category} has empty or non-text entries")
        found[(dataset, category)] = texts
    if absent:
        raise UserError(f"{path} has no entries for {', '.join(absent)}")
    return found
