"""Model cards next to the shipped weights: settings, data recipe, training time, metrics and file hashes.

The hash table is machine-checked (`card_hashes`): a test asserts that every weight file in an asset folder is
listed with its SHA-256, so a card can never silently describe other weights.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

CARD_FILE = "MODEL_CARD.md"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
_ROW = re.compile(r"^\| `(?P<name>[^`]+)` \| (?P<size>\d+) \| `(?P<sha>[0-9a-f]{64})` \|$")


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weight_files(folder: Path) -> list[Path]:
    """The weight files of an asset folder, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix in WEIGHT_SUFFIXES)


def hash_table(folder: Path) -> str:
    """The markdown table of weight files: name, bytes and SHA-256."""
    rows = ["| file | bytes | SHA-256 |", "| --- | --- | --- |"]
    rows += [f"| `{p.name}` | {p.stat().st_size} | `{sha256(p)}` |" for p in weight_files(folder)]
    return "\n".join(rows)


def write_model_card(folder: Path, title: str, body: str) -> Path:
    """Write `MODEL_CARD.md`: the title, the free-form `body` (markdown) and the weight-file hash table."""
    path = Path(folder) / CARD_FILE
    path.write_text(f"# {title}\n\n{body.strip()}\n\n## Weight files\n\n{hash_table(folder)}\n", encoding="utf-8")
    return path


def card_hashes(folder: Path) -> dict[str, tuple[int, str]]:
    """File name -> (bytes, SHA-256) as listed in the folder's model card."""
    text = (Path(folder) / CARD_FILE).read_text(encoding="utf-8")
    found = (_ROW.match(line.strip()) for line in text.splitlines())
    return {m["name"]: (int(m["size"]), m["sha"]) for m in found if m}


def _section(title: str, values: dict) -> str:
    rows = "\n".join(f"| {key} | {value} |" for key, value in values.items())
    return f"## {title}\n\n| | |\n| --- | --- |\n{rows}\n"


def card_body(summary: str, sections: dict[str, dict], notes: str = "") -> str:
    """A card body: a summary paragraph, one key/value table per section, then free-form notes."""
    parts = [summary.strip()] + [_section(title, values) for title, values in sections.items() if values]
    return "\n\n".join(parts + ([notes.strip()] if notes.strip() else []))
