"""Where the project's own files live (the checkout) and where user data goes (outside it)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SEED_KNOWLEDGE_DIR = PROJECT_ROOT / "knowledge"
EXAMPLES_DIR = PROJECT_ROOT / "examples"
ASSETS_DIR = Path(__file__).resolve().parent / "assets"


def default_data_dir() -> Path:
    """User data (LanceDB, runs): `$REASON_IAD_DATA_DIR`, else `/data` on a Space with storage, else ~/.local/share."""
    explicit = os.environ.get("REASON_IAD_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("SPACE_ID") and Path("/data").is_dir():
        return Path("/data/reason-iad")
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "reason-iad"
