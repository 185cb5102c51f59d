"""Opening LanceDB tables so that an interrupted write never blocks the database.

A table counts as existing only when it has a committed version. A process killed while creating a table can
leave its folder (or object-store prefix) with data files but no manifest: `list_tables()` still names it, yet
`open_table()` says it is not found. These helpers treat such a table as absent, so the next writer creates it.
"""

from __future__ import annotations


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
