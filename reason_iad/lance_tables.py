"""Opening LanceDB tables so that an interrupted write never blocks the database.

A table counts as existing only when it has a committed version. A process killed while creating a table can
leave its folder (or object-store prefix) with data files but no manifest: `list_tables()` still names it, yet
`open_table()` says it is not found. These helpers treat such a table as absent, so the next writer creates it.

Two processes starting on a fresh object store race to create the same table. LanceDB rebases the loser's creation
onto the winner's as an Overwrite (compatible with everything), so a table must be created with its first rows in the
same commit (a replayed creation then rewrites the same content), and appends retry commit conflicts: an append
based on the version an Overwrite replaced is refused by LanceDB, never merged silently.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
COMMIT_ATTEMPTS = 6


def open_table_or_none(db, name: str):
    """The table `name` of the connection `db`, or None when it has no committed version."""
    if name not in db.list_tables().tables:
        return None
    try:
        return db.open_table(name)
    except (ValueError, FileNotFoundError, OSError):  # a folder without a committed manifest
        return None


def has_table(db, name: str) -> bool:
    """True when the table `name` exists with at least one committed version."""
    return open_table_or_none(db, name) is not None


def is_object_store(uri: str) -> bool:
    """True for an object-store URI (`s3://`, `gs://`, `az://`, ...), False for a local folder."""
    return "://" in str(uri) and not str(uri).startswith("file://")


def create_table_once(db, name: str, schema, data: Callable[[], list | None] | None = None):
    """The table `name`, created with `data()` (its first rows, computed only when needed) when it has no version.

    Never `exist_ok`/`overwrite`: a creation that lost a race opens the winner's table instead of failing.
    """
    table = open_table_or_none(db, name)
    if table is not None:
        return table
    rows = data() if data is not None else None
    table = open_table_or_none(db, name)  # computing the rows took time: another process may have won meanwhile
    if table is not None:
        return table
    try:
        return db.create_table(name, data=rows or None, schema=schema)
    except (ValueError, OSError, RuntimeError):  # another process created it first
        table = open_table_or_none(db, name)
        if table is None:
            raise
        return table


def is_commit_conflict(err: BaseException) -> bool:
    """True for LanceDB's refusal of a commit that raced another (retry it on the latest version)."""
    text = str(err).lower()
    return "conflict" in text or "incompatible transaction" in text


def commit_retrying(table, apply: Callable[[object], T], attempts: int = COMMIT_ATTEMPTS) -> T:
    """`apply(table)` on the table's latest version, retried with jittered backoff while commits conflict.

    The last conflict (or any other error) is raised as it came; callers phrase it for users.
    """
    for attempt in range(attempts):
        table.checkout_latest()
        try:
            return apply(table)
        except (RuntimeError, OSError, ValueError) as err:
            if not is_commit_conflict(err) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (2**attempt) * random.uniform(0.5, 1.5))  # jitter: processes fall out of step
    raise AssertionError("unreachable")
