"""Import and export of knowledge, validated in full before anything is written.

Formats, one row each in `KNOWLEDGE_FORMATS` (name, suffix, file name, reader, writer): MMAD's
`domain_knowledge.json` ({dataset: {category: {key: text}}}) and JSONL (one `KnowledgeEntry` per line). The CLI,
the studio's upload and export read the table; a new format is one row (and its test). Exports re-import loss-free.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from reason_iad.errors import UserError
from reason_iad.knowledge.entry import (
    KnowledgeEntry,
    entry_id,
    split_mmad_text,
    to_domain_knowledge,
    validation_message,
)

if TYPE_CHECKING:  # the store (and lancedb) load only when a file is written: the CLI's parser reads the table
    from reason_iad.knowledge.store import KnowledgeStore

MAX_IMPORT_BYTES = 50 * 2**20


@dataclass
class ImportSummary:
    """What an import did (or, when refused, would have done)."""

    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (where, why)
    version: int | None = None  # the new version, None when nothing was written

    def describe(self) -> str:
        """One line per kind, refusals with their reasons."""
        lines = [
            f"created {len(self.created)}, changed {len(self.changed)}, unchanged {len(self.unchanged)}, "
            f"refused {len(self.refused)}" + (f"; new version {self.version}" if self.version else "; nothing written")
        ]
        lines += [f"refused {where}: {why}" for where, why in self.refused]
        return "\n".join(lines)


def _validated(where: str, values: dict, refused: list) -> KnowledgeEntry | None:
    try:
        return KnowledgeEntry(**values)
    except ValidationError as err:
        refused.append((where, validation_message(err)))
        return None


def parse_jsonl(text: str, author: str) -> tuple[list[KnowledgeEntry], list[tuple[str, str]]]:
    """Entries and refusals from JSONL text; a line that is not a JSON object is refused."""
    entries, refused = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            refused.append((f"line {number}", f"not JSON ({err.msg})"))
            continue
        except RecursionError:
            refused.append((f"line {number}", "JSON nested too deeply"))
            continue
        if not isinstance(data, dict):
            refused.append((f"line {number}", "not a JSON object"))
            continue
        entry = _validated(f"line {number}", {"author": author} | data, refused)
        if entry is not None:
            entries.append(entry)
    return entries, refused


def parse_domain_knowledge(data: object, author: str) -> tuple[list[KnowledgeEntry], list[tuple[str, str]]]:
    """Entries and refusals from MMAD's nested structure; a wrong shape is refused as a whole."""
    if not isinstance(data, dict) or not all(isinstance(c, dict) for c in data.values()):
        raise UserError("not MMAD's domain_knowledge structure {dataset: {category: {key: text}}}")
    entries, refused = [], []
    for dataset, categories in data.items():
        for category, keys in categories.items():
            if not isinstance(keys, dict):
                refused.append((f"{dataset}/{category}", "expected an object of key -> text"))
                continue
            for key, value in keys.items():
                where = f"{dataset}/{category}/{key}"
                if not isinstance(value, str):
                    refused.append((where, "the text must be a string"))
                    continue
                title, text = split_mmad_text(key, value)
                values = dict(
                    id=entry_id(dataset, category, key),
                    dataset=dataset,
                    category=category,
                    defect=key,
                    title=title,
                    text=text,
                    source="imported",
                    author=author,
                )
                entry = _validated(where, values, refused)
                if entry is not None:
                    entries.append(entry)
    return entries, refused


def read_import_file(path: str | Path, author: str) -> tuple[list[KnowledgeEntry], list[tuple[str, str]]]:
    """Parse a knowledge file (its format from its suffix: `KNOWLEDGE_FORMATS`) into entries and refusals."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"import file not found: {path}")
    if path.stat().st_size > MAX_IMPORT_BYTES:
        raise UserError(f"{path} is larger than {MAX_IMPORT_BYTES // 2**20} MiB")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text") from err
    return format_of(path).read(text, author, str(path))


def _read_mmad(text: str, author: str, where: str) -> tuple[list[KnowledgeEntry], list[tuple[str, str]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{where} is not valid JSON: {err}") from err
    except RecursionError:
        raise UserError(f"{where} is JSON nested too deeply to be knowledge") from None
    return parse_domain_knowledge(data, author)


def import_entries(
    store: KnowledgeStore,
    entries: list[KnowledgeEntry],
    refused: list[tuple[str, str]],
    author: str,
    partial: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Write validated entries in one version; with refusals nothing is written unless `partial`."""
    summary = ImportSummary(refused=list(refused))
    ids = [e.id for e in entries]
    for duplicate in sorted({i for i in ids if ids.count(i) > 1}):
        summary.refused.append((duplicate, "duplicate id in the file"))
    existing = store.get_many(sorted(set(ids)))
    for entry in {e.id: e for e in entries}.values():
        stored = existing.get(entry.id)
        kind = (
            summary.created
            if stored is None
            else (summary.unchanged if _same(stored.entry, entry) else summary.changed)
        )
        kind.append(entry.id)
    if summary.refused and not partial:
        return summary
    duplicates = {where for where, _ in summary.refused}
    to_write = [
        e for e in {e.id: e for e in entries}.values() if e.id not in duplicates and e.id not in summary.unchanged
    ]
    if to_write:
        summary.version = store.upsert(
            to_write,
            author,
            f"imported {len(summary.created)} new, {len(summary.changed)} changed entries",
            action="import",
        )
    if progress:
        progress(len(to_write))
    return summary


def _same(a: KnowledgeEntry, b: KnowledgeEntry) -> bool:
    keys = ("dataset", "category", "defect", "title", "text")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


def export_jsonl(store: KnowledgeStore, path: str | Path, version: int | None = None) -> int:
    """Write every entry (at a version) as JSONL; returns the number written."""
    entries = [s.entry for s in store.list(version=version)]
    lines = [json.dumps(e.model_dump(), ensure_ascii=False) for e in entries]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(entries)


def export_domain_knowledge(store: KnowledgeStore, path: str | Path, version: int | None = None) -> int:
    """Write MMAD's `domain_knowledge.json` structure, formatted as MMAD's file is; returns the number of entries.

    MMAD's file is `json.dump(data, indent=4)` (non-ASCII characters escaped, no final newline), so an imported file
    comes back byte for byte (entries in id order: MMAD's own order where the file is sorted so).
    """
    entries = [s.entry for s in store.list(version=version)]
    Path(path).write_text(json.dumps(to_domain_knowledge(entries), indent=4), encoding="utf-8")
    return len(entries)


def export_knowledge(
    store: KnowledgeStore, path: str | Path, name: str | None = None, version: int | None = None
) -> int:
    """Write the knowledge (at a version) in the format `name` (default: from the file's suffix); returns the count."""
    chosen = KNOWLEDGE_FORMATS[name] if name else format_of(path)
    return chosen.write(store, path, version)


@dataclass(frozen=True)
class KnowledgeFormat:
    """One knowledge file format."""

    name: str
    suffix: str  # what a file of this format ends with
    filename: str  # the studio's download name
    label: str
    read: Callable[[str, str, str], tuple[list[KnowledgeEntry], list[tuple[str, str]]]]  # (text, author, where)
    write: Callable[[KnowledgeStore, str | Path, int | None], int]  # (store, path, version) -> entries written


KNOWLEDGE_FORMATS: dict[str, KnowledgeFormat] = {
    "mmad": KnowledgeFormat(
        "mmad", ".json", "domain_knowledge.json", "MMAD domain_knowledge.json", _read_mmad, export_domain_knowledge
    ),
    "jsonl": KnowledgeFormat(
        "jsonl",
        ".jsonl",
        "knowledge.jsonl",
        "JSONL (one entry per line)",
        lambda t, a, _: parse_jsonl(t, a),
        export_jsonl,
    ),
}


def format_of(path: str | Path) -> KnowledgeFormat:
    """The format a file's suffix names (refused with the known suffixes otherwise)."""
    suffix = Path(path).suffix.lower()
    for known in KNOWLEDGE_FORMATS.values():
        if known.suffix == suffix:
            return known
    offered = ", ".join(f"{f.suffix} ({f.label})" for f in KNOWLEDGE_FORMATS.values())
    raise UserError(f"{Path(path).name}: not a knowledge file; use {offered}")
