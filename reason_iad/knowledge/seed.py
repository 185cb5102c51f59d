"""Seed knowledge files (`knowledge/*.jsonl`): one reviewable entry per line, loaded into the store on first use.

Each line is a `KnowledgeEntry` (see `entry.py`), reviewed like code.
"""

from __future__ import annotations

import json
from pathlib import Path

from reason_iad.errors import UserError
from reason_iad.knowledge.entry import KnowledgeEntry


def load_seed_file(path: str | Path) -> list[KnowledgeEntry]:
    """Read one JSONL seed file; a bad line raises `UserError` naming the file and line."""
    entries = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(KnowledgeEntry.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValueError) as err:
            raise UserError(f"{path}:{number}: invalid knowledge entry: {err}") from err
    return entries


def load_seed_entries(folder: str | Path) -> list[KnowledgeEntry]:
    """All entries of all `*.jsonl` files in a folder, in file then line order; ids must be unique."""
    entries = [e for path in sorted(Path(folder).glob("*.jsonl")) for e in load_seed_file(path)]
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen:
            raise UserError(f"duplicate knowledge id {entry.id!r} in {folder}")
        seen.add(entry.id)
    return entries
