"""Seed knowledge files (`knowledge/*.jsonl`): one reviewable entry per line, loaded into the store on first use.

Each line is a `SeedEntry`; `to_domain_knowledge` turns entries into MMAD's `domain_knowledge.json` structure.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from reason_iad.errors import UserError

MAX_TEXT_CHARS = 8000
NORMAL_KEY = "good"


class SeedEntry(BaseModel):
    """One knowledge entry: what a defect (or the normal appearance) of a category looks like."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200)
    dataset: str = Field(min_length=1, max_length=100)
    category: str = Field(min_length=1, max_length=100)
    defect: str = Field(min_length=1, max_length=100)
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    source: str = "project-written"
    author: str = "reason-iad"

    @field_validator("id", "dataset", "category", "defect", "title", "text")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty or whitespace")
        bad = [c for c in value if unicodedata.category(c) == "Cc" and c not in "\n\t"]
        if bad:
            raise ValueError(f"contains control characters {sorted({hex(ord(c)) for c in bad})}")
        return value.strip()


def entry_id(dataset: str, category: str, defect: str) -> str:
    """The stable id of an entry: `dataset/category/defect`, lower case."""
    return f"{dataset}/{category}/{defect}".lower()


def load_seed_file(path: str | Path) -> list[SeedEntry]:
    """Read one JSONL seed file; a bad line raises `UserError` naming the file and line."""
    entries = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(SeedEntry.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValueError) as err:
            raise UserError(f"{path}:{number}: invalid knowledge entry: {err}") from err
    return entries


def load_seed_entries(folder: str | Path) -> list[SeedEntry]:
    """All entries of all `*.jsonl` files in a folder, in file then line order; ids must be unique."""
    entries = [e for path in sorted(Path(folder).glob("*.jsonl")) for e in load_seed_file(path)]
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen:
            raise UserError(f"duplicate knowledge id {entry.id!r} in {folder}")
        seen.add(entry.id)
    return entries


def to_domain_knowledge(entries: list[SeedEntry]) -> dict[str, dict[str, dict[str, str]]]:
    """MMAD's structure {dataset: {category: {defect_or_good: text}}}, the title kept as MMAD's `<Title>` line."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for e in entries:
        out.setdefault(e.dataset, {}).setdefault(e.category, {})[e.defect] = f"<{e.title}>\nDescription: {e.text}"
    return out
