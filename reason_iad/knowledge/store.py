"""The knowledge base: an embedded LanceDB database of validated entries, versioned, restorable and safe.

`KnowledgeStore(uri, text_embedder, image_embedder)` opens (or creates and seeds) the database at `uri` — a
local folder or an object-store URI such as `s3://bucket/prefix` (LanceDB handles both; only local paths are
tested here). Every write is validated first (nothing is written on bad input), serialised within the process,
retried on commit conflicts with other processes, and recorded in a history table with its author and summary.
Filters are built with `lancedb.expr`, never from strings, so no input can widen a query or a delete.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import lancedb

from reason_iad.errors import UserError
from reason_iad.filters import all_of, any_of, equal_to
from reason_iad.knowledge.embedders import Embedder
from reason_iad.knowledge.entry import KnowledgeEntry, make_entry
from reason_iad.knowledge.schema import (
    ENTRY_FIELDS,
    HISTORY_TABLE,
    KNOWLEDGE_TABLE,
    META_TABLE,
    HistoryRow,
    MetaRow,
    knowledge_model,
)

_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()
WRITE_ATTEMPTS = 6


@dataclass(frozen=True)
class StoredEntry:
    """An entry as stored, with its timestamps."""

    entry: KnowledgeEntry
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class Change:
    """One recorded change of the knowledge table."""

    version: int
    timestamp: str
    author: str
    action: str
    summary: str
    ids: tuple[str, ...]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _lock_for(uri: str) -> threading.RLock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(uri, threading.RLock())


def stored_entry(row: dict) -> StoredEntry:
    """A table row as a `StoredEntry` (vectors dropped)."""
    return StoredEntry(KnowledgeEntry(**{k: row[k] for k in ENTRY_FIELDS}), row["created_at"], row["updated_at"])


def id_filter(ids: Sequence[str]):
    """A safe `id IN (...)` expression built from literals (never SQL text)."""
    return any_of(equal_to("id", value) for value in ids)


def embedder_meta(text_embedder: Embedder, image_embedder: Embedder | None) -> dict[str, str]:
    """The embedder names a store records (and checks on every open)."""
    return {"text_embedder": text_embedder.name, "image_embedder": image_embedder.name if image_embedder else ""}


def write_meta(db, text_embedder: Embedder, image_embedder: Embedder | None) -> None:
    """(Re)write the store's record of its embedders."""
    meta = db.create_table(META_TABLE, schema=MetaRow, mode="overwrite")
    meta.add([MetaRow(key=k, value=v) for k, v in embedder_meta(text_embedder, image_embedder).items()])


def create_search_indexes(table) -> None:
    """Full-text index on title + text; bitmap indexes on the columns scoped searches prefilter on."""
    from lancedb.index import FTS, Bitmap

    table.create_index("body", config=FTS(), replace=True)
    for name in ("dataset", "category"):
        table.create_index(name, config=Bitmap(), replace=True)


def entry_rows(entries: Sequence[KnowledgeEntry], text_embedder: Embedder, image_embedder: Embedder | None,
               created_at: dict[str, str]) -> list[dict]:  # fmt: skip
    """Arrow-ready rows with fresh vectors; `created_at` keeps the creation time of existing ids."""
    now = _now()
    bodies = [f"{e.title}\n{e.text}" for e in entries]
    text_vectors = text_embedder.embed_texts(bodies)
    image_vectors = image_embedder.embed_texts(bodies) if image_embedder else None
    rows = []
    for i, entry in enumerate(entries):
        row = entry.model_dump() | {"created_at": created_at.get(entry.id, now), "updated_at": now,
                                    "body": bodies[i], "text_vector": text_vectors[i].tolist()}  # fmt: skip
        if image_vectors is not None:
            row["image_vector"] = image_vectors[i].tolist()
        rows.append(row)
    return rows


class KnowledgeStore:
    """Create/open, read, write, version and restore the knowledge base."""

    def __init__(self, uri: str | Path, text_embedder: Embedder, image_embedder: Embedder | None = None,
                 seed: Sequence[KnowledgeEntry] = ()) -> None:  # fmt: skip
        self.uri = str(uri)
        self.text_embedder, self.image_embedder = text_embedder, image_embedder
        self._lock = _lock_for(self.uri)
        self.db = lancedb.connect(self.uri)
        with self._lock:
            if KNOWLEDGE_TABLE not in self.db.list_tables().tables:
                self._create(seed)
        self.table = self.db.open_table(KNOWLEDGE_TABLE)
        self.history = self.db.open_table(HISTORY_TABLE)
        self.meta = self.db.open_table(META_TABLE)
        self._check_embedders()

    # ------------------------------------------------------------------ creation
    def _create(self, seed: Sequence[KnowledgeEntry]) -> None:
        image_dim = self.image_embedder.dim if self.image_embedder else None
        model = knowledge_model(self.text_embedder.dim, image_dim)
        table = self.db.create_table(KNOWLEDGE_TABLE, schema=model, exist_ok=True)
        self.db.create_table(HISTORY_TABLE, schema=HistoryRow, exist_ok=True)
        write_meta(self.db, self.text_embedder, self.image_embedder)
        if seed:
            table.add(self.rows(seed, created_at={}))
            self.db.open_table(HISTORY_TABLE).add([HistoryRow(
                version=table.version, timestamp=_now(), author="seed", action="seed",
                summary=f"seeded {len(seed)} entries from the project's knowledge files", ids=json.dumps([]),
            )])  # fmt: skip
        create_search_indexes(table)

    def _check_embedders(self) -> None:
        stored = {row["key"]: row["value"] for row in self.meta.search().to_list()}
        wanted = embedder_meta(self.text_embedder, self.image_embedder)
        if stored != wanted:
            raise UserError(
                f"the knowledge base at {self.uri} was embedded with {stored}, not {wanted}; "
                "re-embed it (`reason-iad kb reembed`) or use the same embedders"
            )

    # ------------------------------------------------------------------ rows
    def rows(self, entries: Sequence[KnowledgeEntry], created_at: dict[str, str]) -> list[dict]:
        """Arrow-ready rows with this store's embedders (see `entry_rows`)."""
        return entry_rows(entries, self.text_embedder, self.image_embedder, created_at)

    # ------------------------------------------------------------------ reads
    pinned_version: int | None = None  # set on read-only views of a past version (`at_version`)

    def at_version(self, version: int) -> KnowledgeStore:
        """A read-only view of the knowledge base as it was at `version`: search and list see that version.

        Raises:
            UserError: An unknown version.
        """
        view = copy.copy(self)
        view.table = self.db.open_table(KNOWLEDGE_TABLE)
        self._checkout(view.table, int(version))
        view.pinned_version = int(version)
        return view

    def refresh(self) -> None:
        """See the latest committed version (a read-only view of a past version stays where it is)."""
        if self.pinned_version is None:
            self.table.checkout_latest()

    @property
    def version(self) -> int:
        """The latest committed version of the knowledge table (a view's own version)."""
        self.refresh()
        return self.table.version

    def count(self) -> int:
        """Number of entries at the latest version (a view's own version)."""
        self.refresh()
        return self.table.count_rows()

    def get_many(self, ids: Sequence[str]) -> dict[str, StoredEntry]:
        """Entries by id (missing ids are absent from the result)."""
        if not ids:
            return {}
        self.refresh()
        rows = self.table.search().where(id_filter(ids)).limit(len(ids) + 1).to_list()
        return {row["id"]: stored_entry(row) for row in rows}

    def get(self, entry_id: str) -> StoredEntry:
        """One entry; an unknown id is a `UserError`."""
        found = self.get_many([entry_id])
        if entry_id not in found:
            raise UserError(f"no knowledge entry with id {entry_id!r}")
        return found[entry_id]

    def list(
        self, dataset: str | None = None, category: str | None = None, version: int | None = None
    ) -> list[StoredEntry]:
        """Entries, optionally of one dataset/category, at the latest or a given version, sorted by id."""
        table = self.db.open_table(KNOWLEDGE_TABLE)
        version = self.pinned_version if version is None else version
        if version is not None:
            self._checkout(table, version)
        query = table.search()
        condition = all_of(equal_to(name, value) for name, value in (("dataset", dataset), ("category", category))
                           if value is not None)  # fmt: skip
        if condition is not None:
            query = query.where(condition)
        rows = query.limit(max(table.count_rows(), 1)).to_list()
        return sorted((stored_entry(r) for r in rows), key=lambda s: s.entry.id)

    def _checkout(self, table, version: int) -> None:
        known = [v["version"] for v in table.list_versions()]
        if version not in known:
            raise UserError(f"knowledge version {version} does not exist (versions {min(known)}..{max(known)})")
        table.checkout(version)

    def changes(self) -> list[Change]:
        """The change history, oldest first."""
        self.history.checkout_latest()
        rows = self.history.search().limit(max(self.history.count_rows(), 1)).to_list()
        return sorted((Change(r["version"], r["timestamp"], r["author"], r["action"], r["summary"],
                              tuple(json.loads(r["ids"]))) for r in rows), key=lambda c: c.version)  # fmt: skip

    # ------------------------------------------------------------------ writes
    def write(self, author: str, action: str, summary: str, ids: Sequence[str], apply: Callable[[object], None]) -> int:
        """Run `apply(table)` under the write lock, retrying commit conflicts; record the change; new version."""
        author = author.strip()
        if not author:
            raise UserError("every change needs an author")
        if self.pinned_version is not None:
            raise UserError(f"version {self.pinned_version} is a read-only view; restore it to change it")
        with self._lock:
            for attempt in range(WRITE_ATTEMPTS):
                self.table.checkout_latest()
                try:
                    apply(self.table)
                    break
                except (RuntimeError, OSError, ValueError) as err:
                    if "conflict" not in str(err).lower() or attempt == WRITE_ATTEMPTS - 1:
                        raise UserError(f"could not write the knowledge base ({err}); nothing was changed") from err
                    time.sleep(0.05 * (2**attempt))
            version = self.table.version
            self.history.add([HistoryRow(version=version, timestamp=_now(), author=author, action=action,
                                         summary=summary, ids=json.dumps(list(ids)))])  # fmt: skip
            return version

    # ------------------------------------------------------------------ curation
    def add(self, entries: Sequence[KnowledgeEntry], author: str, summary: str = "") -> int:
        """Add new entries; an id that exists already (or twice in the batch) is refused, nothing written."""
        ids = _unique_ids(entries)
        existing = self.get_many(ids)
        if existing:
            raise UserError(f"ids already exist: {sorted(existing)}; edit them instead")
        rows = self.rows(entries, created_at={})
        return self.write(author, "add", summary or f"added {', '.join(ids)}", ids, lambda t: t.add(rows))

    def update(self, entry_id: str, author: str, summary: str = "", **changes: str) -> int:
        """Change fields of one entry (not its id); the entry is re-validated and re-embedded."""
        if "id" in changes:
            raise UserError("the id of an entry cannot change; add a new entry and delete the old one")
        current = self.get(entry_id).entry
        updated = make_entry(**(current.model_dump() | changes))
        if updated == current:
            return self.version
        what = summary or f"edited {entry_id} ({', '.join(sorted(changes))})"
        return self.upsert([updated], author, what, action="update")

    def upsert(self, entries: Sequence[KnowledgeEntry], author: str, summary: str = "", action: str = "upsert") -> int:
        """Insert new and replace existing entries by id in one version (creation times kept)."""
        ids = _unique_ids(entries)
        created = {i: stored.created_at for i, stored in self.get_many(ids).items()}
        rows = self.rows(entries, created_at=created)

        def apply(table) -> None:
            table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(rows)

        return self.write(author, action, summary or f"{action} {len(ids)} entries", ids, apply)

    def delete(self, ids: Sequence[str], author: str, summary: str = "") -> int:
        """Delete entries by id; unknown ids are refused, nothing written."""
        ids = list(dict.fromkeys(ids))
        missing = sorted(set(ids) - set(self.get_many(ids)))
        if not ids or missing:
            raise UserError(f"no knowledge entries with ids {missing}" if missing else "nothing to delete")
        return self.write(author, "delete", summary or f"deleted {', '.join(ids)}", ids,
                          lambda t: t.delete(id_filter(ids)))  # fmt: skip

    def restore(self, version: int, author: str) -> int:
        """Make `version` the latest again (as a new version; nothing is lost)."""

        def apply(table) -> None:
            latest = table.schema
            self._checkout(table, version)
            if table.schema != latest:
                table.checkout_latest()
                raise UserError(f"version {version} was embedded with other embedders; it cannot be restored")
            table.restore()

        return self.write(author, "restore", f"restored version {version}", [], apply)

    def tag(self, name: str, version: int | None = None) -> int:
        """Name a version (default: the latest) for later reference."""
        name = name.strip()
        if not name or len(name) > 100 or not all(c.isalnum() or c in "-_." for c in name):
            raise UserError("a tag name is 1-100 letters, digits, '-', '_' or '.'")
        version = self.version if version is None else version
        self._checkout(self.db.open_table(KNOWLEDGE_TABLE), version)
        with self._lock:
            if name in self.table.tags.list():
                raise UserError(f"tag {name!r} exists already")
            self.table.tags.create(name, version)
        return version

    def tags(self) -> dict[str, int]:
        """Tag name -> version."""
        return {name: info["version"] for name, info in self.table.tags.list().items()}


def _unique_ids(entries: Sequence[KnowledgeEntry]) -> list[str]:
    ids = [e.id for e in entries]
    if not ids:
        raise UserError("no entries given")
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise UserError(f"duplicate ids in one change: {duplicates}")
    return ids
