"""Safe output folders: check the target first, build in a hidden sibling, swap it into place at the end.

A failure removes the half-built sibling; with `force` the old folder is replaced only after success, and
only when it looks like an earlier output of ours (so `--force` cannot wipe an unrelated folder).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from reason_iad.errors import UserError


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def check_output_dir(out_dir: Path, *, force: bool, markers: Sequence[str]) -> Path:
    """Validate an output folder before anything is written.

    Args:
        out_dir: The folder to create or replace.
        force: Whether an existing non-empty folder may be replaced.
        markers: File names of which at least one must exist in a non-empty folder replaced with `force`.

    Returns:
        The absolute target path.

    Raises:
        UserError: The path is a file, the folder is non-empty (without `force`, or not one of our outputs),
            or the nearest existing parent is not a writable folder.
    """
    target = Path(os.path.abspath(Path(out_dir).expanduser()))
    if target.exists() and not target.is_dir():
        raise UserError(f"output path {target} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()):
        if not force:
            raise UserError(f"output folder {target} is not empty; pass --force to replace it")
        if not any((target / name).is_file() for name in markers):
            raise UserError(f"refusing to replace {target}: it has no {' or '.join(markers)}, so it is not our output")
    if target.parent == target:
        raise UserError(f"cannot write to the file-system root {target}")
    parent = _nearest_existing(target.parent)
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to {parent}: not a writable folder")
    return target


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """Yield an empty hidden sibling of `target`; on normal exit it replaces `target`, on error it is removed.

    Args:
        target: The final folder (validated with `check_output_dir`).

    Yields:
        The staging folder to fill.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
        os.chmod(staging, 0o777 & ~_current_umask())  # mkdtemp makes 0700; give the usual folder mode
    except OSError as err:
        raise UserError(f"cannot create the output folder next to {target}: {err.strerror or err}") from err
    try:
        yield staging
        _swap_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap_into_place(staging: Path, target: Path) -> None:
    """Rename `staging` to `target`, moving an existing `target` aside first and deleting it afterwards."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        old.rmdir()
        os.replace(target, old)
    try:
        os.replace(staging, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
