"""Run cards: one JSON file that says exactly how an inspection was made, so that it can be shared and rerun.

A card names the model (with hashes of its weights and config), the reasoning settings, the knowledge (its
version and every entry's id and text), the input (the image's SHA-256, the question and its options, category,
dataset, template) and the result (answer, probabilities, rationale, kept patches, anomaly summary, steps,
timings). `run_card(...)` builds one from an `Inspection`; `read_run_card(path)` reads and validates one
(`reason_iad.replay` reruns it). Nothing here loads a model or touches a knowledge base.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import math
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from reason_iad.errors import UserError
from reason_iad.types import Inspection

CARD_FORMAT = "reason-iad/run-card"
CARD_VERSION = 1
MAX_CARD_BYTES = 50 * 2**20
HEX64 = re.compile(r"^[0-9a-f]{64}$")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


@dataclass(frozen=True)
class CardEntry:
    """A knowledge text that went into the prompt; `id` is None when it came from a file, not the store."""

    id: str | None
    text: str
    title: str = ""


@dataclass(frozen=True)
class RunCard:
    """A validated run card: the fields a replay needs, typed, and the whole card as read."""

    data: dict
    model: str  # the model spec: "embedded", a folder or a hub id
    quantization: str
    device: str
    dtype: str
    weights_sha256: str
    reasoning: dict
    image_sha256: str
    image_path: str
    question_text: str
    options: tuple[tuple[str, str], ...]
    category: str | None
    dataset: str | None
    template_source: str  # "", "given" or the id of the exemplar used
    template_sha256: str | None
    template_path: str
    knowledge_source: str  # "store", "file" or "none"
    knowledge_db: str
    knowledge_version: int | None
    entries: tuple[CardEntry, ...]
    answer: str
    option_probs: dict[str, float]


def image_sha256(image: Image.Image) -> str:
    """SHA-256 of the pixels the model saw (normalised RGB image, size included), independent of the file format."""
    rgb = image.convert("RGB")
    return hashlib.sha256(f"{rgb.size[0]}x{rgb.size[1]}:RGB:".encode() + rgb.tobytes()).hexdigest()


def run_card(
    inspection: Inspection,
    image: Image.Image,
    question,
    category: str | None = None,
    dataset: str | None = None,
    *,
    backend: Mapping[str, str],
    fingerprint: Mapping[str, Any],
    knowledge_texts: Mapping[str, str] | Sequence[str] = (),
    knowledge_db: str = "",
    template: Image.Image | None = None,
    image_path: str = "",
    template_path: str = "",
) -> dict:
    """The run card of one inspection, as a JSON-ready dict.

    Args:
        inspection: The result.
        image: The query image as loaded (before any evidence drawing).
        question: The `Question` asked.
        category: The category given, if any.
        dataset: The dataset given, if any.
        backend: The model settings (`dataclasses.asdict(BackendConfig)`): model, quantization, device, dtype.
        fingerprint: `model_fingerprint(...)` of that model.
        knowledge_texts: The prompt text of each entry in `inspection.knowledge` by id (from the store at
            `inspection.knowledge_version`), or the texts themselves when they came from a file (no ids).
        knowledge_db: The knowledge base's folder or URI.
        template: The one-shot template image, when one was used.
        image_path: Where the image was read from (kept as a hint for a replay).
        template_path: Where a given template was read from.
    """
    return {
        "format": CARD_FORMAT,
        "version": CARD_VERSION,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": {"name": inspection.model, **dict(backend), **dict(fingerprint)},
        "reasoning": dict(inspection.config),
        "input": _input_section(image, question, category, dataset, image_path),
        "template": {
            "source": inspection.template,
            "path": template_path,
            "sha256": image_sha256(template) if template is not None else None,
        },
        "knowledge": _knowledge_section(inspection, knowledge_texts, knowledge_db),
    } | _result_sections(inspection)


def _result_sections(inspection: Inspection) -> dict:
    """What the inspection found and how: result, kept patches, anomaly summary, steps, timings, cited evidence."""
    result = {
        "answer": inspection.answer,
        "answer_text": inspection.answer_text,
        "option_probs": dict(inspection.option_probs),
        "rationale": inspection.rationale,
        "mode": inspection.mode,
        "best_step": inspection.best_step,
    }
    return {
        "result": result,
        "kept_patches": [dataclasses.asdict(p) for p in inspection.injected],
        "anomaly": dataclasses.asdict(inspection.anomaly) if inspection.anomaly is not None else None,
        "steps": [dataclasses.asdict(s) for s in inspection.steps],
        "timings": dataclasses.asdict(inspection.timings),
        "evidence": inspection.evidence.lines(),
    }


def _input_section(image: Image.Image, question, category, dataset, image_path: str) -> dict:
    return {
        "image": {"sha256": image_sha256(image), "width": image.size[0], "height": image.size[1], "path": image_path},
        "question": question.text,
        "options": {letter: text for letter, text in question.options},
        "category": category,
        "dataset": dataset,
    }


def _knowledge_section(inspection: Inspection, texts: Mapping[str, str] | Sequence[str], db: str) -> dict:
    if isinstance(texts, Mapping):
        missing = [k.id for k in inspection.knowledge if k.id not in texts]
        if missing:
            raise UserError(f"no text for the knowledge entries {missing}")
        entries = [
            {"id": k.id, "title": k.title, "score": k.score, "pinned": k.pinned, "text": texts[k.id]}
            for k in inspection.knowledge
        ]
        source = "store" if entries else "none"
    else:
        entries = [{"id": None, "title": "", "score": None, "pinned": True, "text": t} for t in texts]
        source = "file" if entries else "none"
    return {"source": source, "db": db, "version": inspection.knowledge_version, "entries": entries}


def write_run_card(card: dict, path: str | Path) -> Path:
    """Write a card as indented UTF-8 JSON (validated first: nothing is written for a malformed card)."""
    validate_run_card(card)
    path = Path(path)
    try:
        path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as err:
        raise UserError(f"cannot write the run card {path}: {err}") from err
    return path


def read_run_card(path: str | Path) -> RunCard:
    """Read and validate a run card file.

    Raises:
        UserError: Unreadable, not JSON, not a run card, a newer card format, or a missing or malformed field.
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CARD_BYTES:
            raise UserError(f"{path} is larger than {MAX_CARD_BYTES // 2**20} MiB; not a run card")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read the run card {path}: {err}") from err
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON: {err}") from err
    try:
        return validate_run_card(data)
    except UserError as err:
        raise UserError(f"{path}: {err}") from None


def validate_run_card(data: Any) -> RunCard:
    """Check a card's structure and types; returns its typed view (see `read_run_card`)."""
    if not isinstance(data, dict) or data.get("format") != CARD_FORMAT:
        raise UserError(f'not a run card (expected "format": "{CARD_FORMAT}")')
    if data.get("version") != CARD_VERSION:
        raise UserError(
            f"run card version {data.get('version')!r} is not supported (this reason-iad reads version {CARD_VERSION})"
        )
    model, given = _section(data, "model"), _section(data, "input")
    template, knowledge, result = _section(data, "template"), _section(data, "knowledge"), _section(data, "result")
    reasoning = _section(data, "reasoning")
    image = _field(given, "image", dict, "input")
    version = knowledge.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 0):
        raise UserError("knowledge.version must be a non-negative integer or null")
    return RunCard(
        data=data,
        model=_text(model, "model", "model"),
        quantization=_text(model, "quantization", "model"),
        device=_text(model, "device", "model"),
        dtype=_text(model, "dtype", "model"),
        weights_sha256=_hash(model, "weights_sha256", "model"),
        reasoning=reasoning,
        image_sha256=_hash(image, "sha256", "input.image"),
        image_path=_optional_text(image, "path", "input.image"),
        question_text=_text(given, "question", "input"),
        options=_options(given),
        category=_optional_text(given, "category", "input") or None,
        dataset=_optional_text(given, "dataset", "input") or None,
        template_source=_optional_text(template, "source", "template"),
        template_sha256=_hash(template, "sha256", "template") if template.get("sha256") is not None else None,
        template_path=_optional_text(template, "path", "template"),
        knowledge_source=_choice(knowledge, "source", ("store", "file", "none")),
        knowledge_db=_optional_text(knowledge, "db", "knowledge"),
        knowledge_version=version,
        entries=_entries(knowledge),
        answer=_text(result, "answer", "result"),
        option_probs=_probs(result),
    )


def _section(data: dict, name: str) -> dict:
    return _field(data, name, dict, "card")


def _field(section: dict, name: str, kind: type, where: str):
    value = section.get(name)
    if not isinstance(value, kind):
        raise UserError(f"{where}.{name} is missing or not a{'n object' if kind is dict else ' ' + kind.__name__}")
    return value


def _text(section: dict, name: str, where: str) -> str:
    value = _field(section, name, str, where)
    if not value.strip():
        raise UserError(f"{where}.{name} is empty")
    return value


def _optional_text(section: dict, name: str, where: str) -> str:
    value = section.get(name)
    if value is not None and not isinstance(value, str):
        raise UserError(f"{where}.{name} must be a string or null")
    return value or ""


def _hash(section: dict, name: str, where: str) -> str:
    value = _field(section, name, str, where)
    if not HEX64.match(value):
        raise UserError(f"{where}.{name} is not a SHA-256 hex digest")
    return value


def _choice(section: dict, name: str, choices: tuple[str, ...]) -> str:
    value = section.get(name)
    if value not in choices:
        raise UserError(f"knowledge.{name} must be one of {list(choices)}, got {value!r}")
    return value


def _options(given: dict) -> tuple[tuple[str, str], ...]:
    options = _field(given, "options", dict, "input")
    letters = list(options)
    if len(letters) < 2 or letters != list(string.ascii_uppercase[: len(letters)]):
        raise UserError(f"input.options must be lettered A, B, ... in order (at least two), got {letters}")
    if not all(isinstance(v, str) and v.strip() for v in options.values()):
        raise UserError("input.options must be non-empty texts")
    return tuple(options.items())


def _entries(knowledge: dict) -> tuple[CardEntry, ...]:
    entries = _field(knowledge, "entries", list, "knowledge")
    out = []
    for i, item in enumerate(entries):
        where = f"knowledge.entries[{i}]"
        if not isinstance(item, dict):
            raise UserError(f"{where} is not an object")
        entry_id = item.get("id")
        if entry_id is not None and (not isinstance(entry_id, str) or not entry_id.strip()):
            raise UserError(f"{where}.id must be a non-empty string or null")
        out.append(CardEntry(entry_id, _text(item, "text", where), _optional_text(item, "title", where)))
    return tuple(out)


def _probs(result: dict) -> dict[str, float]:
    probs = _field(result, "option_probs", dict, "result")
    if not probs or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in probs.values()
    ):
        raise UserError("result.option_probs must map option letters to finite numbers")
    return {str(k): float(v) for k, v in probs.items()}


# ---------------------------------------------------------------------------------------------- model hashes
def model_fingerprint(model: str, folder: str | Path | None) -> dict[str, Any]:
    """Hashes of a model's weights and config: {"weights_sha256", "config_sha256", "files": {name: sha256}}.

    Args:
        model: The model spec, recorded as is.
        folder: Where its files are (a local folder, the embedded assets or a hub cache snapshot); None when
            unknown, then the hashes are of the spec text alone and say so (`"hashed": "spec"`).
    """
    if folder is None or not Path(folder).is_dir():
        digest = hashlib.sha256(f"spec:{model}".encode()).hexdigest()
        return {"weights_sha256": digest, "config_sha256": digest, "hashed": "spec", "files": {}}
    root = Path(folder)
    weights = sorted(p for p in root.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    files = {p.name: file_sha256(p) for p in weights}
    config = root / "config.json"
    config_hash = file_sha256(config) if config.is_file() else hashlib.sha256(b"").hexdigest()
    combined = hashlib.sha256("".join(f"{name}:{h}\n" for name, h in files.items()).encode()).hexdigest()
    return {"weights_sha256": combined, "config_sha256": config_hash, "hashed": "files", "files": files}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file; a hub-cache blob is named by its hash already, so it is not read again."""
    resolved = path.resolve()
    if HEX64.match(resolved.name) and resolved.parent.name == "blobs":
        return resolved.name
    stat = resolved.stat()
    return _hash_file(str(resolved), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _hash_file(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**22), b""):
            digest.update(block)
    return digest.hexdigest()
