"""Ground-truth masks of an MMAD-layout dataset: where an image's `mask_path` points, and reading it.

MMAD's own scripts resolve `mask_path` in more than one way (../shared/reference/ecosystem.md §1.1): relative to
the data root (SynthIAD, studio exports), below the key's first three components, or below `<dataset>/<category>`.
`resolve_mask_path` tries them in that order and takes the first file that exists inside the root.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

MASK_THRESHOLD = 127  # grey levels above this are defect (MMAD masks are 0 / 255)


def mask_candidates(key: str, mask_path: str) -> list[str]:
    """Relative paths `mask_path` may mean for the image `key`, most likely first, without repeats."""
    parts = PurePosixPath(key).parts
    found: list[str] = []
    for prefix in ((), parts[:3], parts[:2]):
        candidate = str(PurePosixPath(*prefix, mask_path))
        if candidate not in found:
            found.append(candidate)
    return found


def resolve_mask_path(root: Path, key: str, mask_path: str) -> Path | None:
    """The mask file of image `key` under `root`, or None (no mask_path, or no such file inside the root)."""
    if not mask_path.strip() or PurePosixPath(mask_path).is_absolute():
        return None
    root = root.resolve()
    for candidate in mask_candidates(key, mask_path):
        path = (root / candidate).resolve()
        if root in path.parents and path.is_file():
            return path
    return None


def load_mask(path: Path, size: tuple[int, int]) -> np.ndarray | None:
    """A mask file as bool [H, W] at the image's (width, height) (nearest-neighbour resize); None if unreadable."""
    try:
        with Image.open(path) as image:
            grey = image.convert("L")
            if grey.size != tuple(size):
                grey = grey.resize(tuple(size), Image.Resampling.NEAREST)
            return np.asarray(grey) > MASK_THRESHOLD
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError):
        return None
