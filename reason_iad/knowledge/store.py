"""The knowledge base: an embedded LanceDB database of validated entries, versioned, restorable and safe.

`KnowledgeStore(uri, text_embedder, image_embedder)` opens (or creates and seeds) the database at `uri` — a
local folder or an object-store URI such as `s3://bucket/prefix` (tests run both, S3 against a local server).
Every write is validated first (nothing is written on bad input), serialised within the process, retried on
commit conflicts with other processes (an edit is a compare-and-swap, so replicas never overwrite each other's
edits unseen), and recorded in a history table with its author and summary.
Filters are built with `lancedb.expr`, never from strings, so no input can widen a query or a delete.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import lancedb
from lancedb.util import value_to_sql

from reason_iad.errors import UserError
from reason_iad.filters import all_of, equal_to, one_of
from reason_iad.knowledge.embedders import Embedder
from reason_iad.knowledge.entry import KnowledgeEntry, make_entry
from reason_iad.knowledge.rows import (
    StoredEntry,
    create_search_indexes,
    described,
    embedder_meta,
    entry_rows,
    id_filter,
    now,
    stored_entry,
    write_meta,
)
from reason_iad.knowledge.schema import (
    HISTORY_TABLE,
    KNOWLEDGE_TABLE,
    META_TABLE,
    HistoryRow,
    knowledge_model,
)
from reason_iad.lance_tables import commit_retrying, create_table_once, open_table_or_none

_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(\+00:00|Z)?")


@dataclass(frozen=True)
class Change:
    """One recorded change of the knowledge table."""

    version: int
    timestamp: str
    author: str
    action: str
    summary: str
    ids: tuple[str, ...]


def _lock_for(uri: str) -> threading.RLock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(uri, threading.RLock())


class KnowledgeStore:
    """Create/open, read, write, version and restore the knowledge base."""

    def __init__(
        self,
        uri: str | Path,
        text_embedder: Embedder,
        image_embedder: Embedder | None = None,
        seed: Sequence[KnowledgeEntry] = (),
    ) -> None:
        self.uri = str(uri)
        self.text_embedder, self.image_embedder = text_embedder, image_embedder
        self._lock = _lock_for(self.uri)
        self.db = lancedb.connect(self.uri)
        with self._lock:
            self.history = create_table_once(self.db, HISTORY_TABLE, HistoryRow)
            table = open_table_or_none(self.db, KNOWLEDGE_TABLE)
            self.table = self._create(seed) if table is None else table
            if open_table_or_none(self.db, META_TABLE) is None:  # a creation interrupted before its record
                write_meta(self.db, self.text_embedder, self.image_embedder)
            self.meta = self.db.open_table(META_TABLE)
            self._finish_setup()
        self._check_embedders()

    # ------------------------------------------------------------------ creation
    def _create(self, seed: Sequence[KnowledgeEntry]):
        """The knowledge table, created with its seed in one commit (its existence marks a complete setup)."""
        image_dim = self.image_embedder.dim if self.image_embedder else None
        model = knowledge_model(self.text_embedder.dim, image_dim)
        write_meta(self.db, self.text_embedder, self.image_embedder)
        return create_table_once(self.db, KNOWLEDGE_TABLE, model, lambda: self.rows(seed, created_at={}) or None)

    def _finish_setup(self) -> None:
        """Record the seed and build the search indexes when a first run stopped before doing so."""
        first = self.table.list_versions()[0] if not self.history.count_rows() else None
        if first is not None and int(first["metadata"].get("total_rows", 0)):
            self.history.add(
                [
                    HistoryRow(
                        version=first["version"],
                        timestamp=now(),
                        author="seed",
                        action="seed",
                        summary=f"seeded {first['metadata']['total_rows']} entries from the project's knowledge files",
                        ids=json.dumps([]),
                    )
                ]
            )
        indexed = {column for index in self.table.list_indices() for column in index.columns}
        if not {"body", "dataset", "category"} <= indexed:
            create_search_indexes(self.table)

    def _check_embedders(self) -> None:
        stored = {row["key"]: row["value"] for row in self.meta.search().to_list()}
        wanted = embedder_meta(self.text_embedder, self.image_embedder)
        if stored != wanted:
            raise UserError(
                f"the knowledge base at {self.uri} was embedded with {described(stored)}, not {described(wanted)}; "
                "open it with the embedders it records (`reason-iad kb` does unless --text-embedder or "
                "--image-embedder is given), or re-embed it on purpose: `reason-iad kb reembed --image-embedder ...`"
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
        condition = all_of(
            equal_to(name, value) for name, value in (("dataset", dataset), ("category", category)) if value is not None
        )
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
        return sorted(
            (
                Change(
                    r["version"], r["timestamp"], r["author"], r["action"], r["summary"], tuple(json.loads(r["ids"]))
                )
                for r in rows
            ),
            key=lambda c: c.version,
        )

    # ------------------------------------------------------------------ writes
    def write(
        self,
        author: str,
        action: str,
        summary: str,
        ids: Sequence[str],
        apply: Callable[[object], None],
        verify: Callable[[int], None] | None = None,
    ) -> int:
        """Run `apply(table)` under the write lock, retrying commit conflicts; record the change; new version.

        `verify(version)` runs after the commit and before the history row: it may undo the write and raise (another
        replica won a race the commit protocol cannot see), and then no change is recorded.
        """
        author = author.strip()
        if not author:
            raise UserError("every change needs an author")
        if self.pinned_version is not None:
            raise UserError(f"version {self.pinned_version} is a read-only view; restore it to change it")
        with self._lock:
            try:
                commit_retrying(self.table, apply)
            except UserError:
                raise
            except (RuntimeError, OSError, ValueError) as err:
                raise UserError(f"could not write the knowledge base ({err}); nothing was changed") from err
            version = self.table.version
            if verify is not None:
                verify(version)
            self.history.add(
                [
                    HistoryRow(
                        version=version,
                        timestamp=now(),
                        author=author,
                        action=action,
                        summary=summary,
                        ids=json.dumps(list(ids)),
                    )
                ]
            )
            return version

    # ------------------------------------------------------------------ curation
    def add(self, entries: Sequence[KnowledgeEntry], author: str, summary: str = "") -> int:
        """Add new entries; an id that exists already (or twice in the batch) is refused, nothing written."""
        ids = _unique_ids(entries)
        existing = self.get_many(ids)
        if existing:
            raise UserError(f"ids already exist: {_listed(sorted(existing))}; edit them instead")
        rows = self.rows(entries, created_at={})
        what = summary or f"added {', '.join(ids)}"
        return self.write(author, "add", what, ids, lambda t: t.add(rows), lambda v: self._first_to_add(v, rows))

    def _first_to_add(self, version: int, rows: list[dict]) -> None:
        """Undo an add whose ids another replica committed first (LanceDB appends never conflict), and refuse it.

        The version before ours tells who was first: an id already there means our rows are the duplicates.
        """
        before = self.db.open_table(KNOWLEDGE_TABLE)
        self._checkout(before, version - 1)
        query = before.search().where(id_filter([r["id"] for r in rows])).select(["id"]).limit(len(rows) + 1)
        taken = sorted({r["id"] for r in query.to_list()})
        if not taken:
            return
        ours = [r for r in rows if r["id"] in taken]
        self.table.delete(
            all_of([one_of("id", [r["id"] for r in ours]), equal_to("updated_at", ours[0]["updated_at"])])
        )
        raise UserError(f"ids already exist: {_listed(taken)} (added by another writer meanwhile); edit them instead")

    def update(self, entry_id: str, author: str, summary: str = "", **changes: str) -> int:
        """Change fields of one entry (not its id); the entry is re-validated and re-embedded."""
        if "id" in changes:
            raise UserError("the id of an entry cannot change; add a new entry and delete the old one")
        current = self.get(entry_id).entry
        if make_entry(**(current.model_dump() | changes)) == current:
            return self.version
        what = summary or f"edited {entry_id} ({', '.join(sorted(changes))})"
        return self.write(author, "update", what, [entry_id], lambda t: self._apply_update(t, entry_id, changes))

    def _apply_update(self, table, entry_id: str, changes: dict[str, str]) -> None:
        """Apply `changes` to the entry as it is now, by compare-and-swap on `updated_at` (an edit meanwhile: retry)."""
        rows = table.search().where(id_filter([entry_id])).limit(2).to_list()
        if not rows:
            raise UserError(f"no knowledge entry with id {entry_id!r} (it was deleted meanwhile)")
        stored = stored_entry(rows[0])
        updated = make_entry(**(stored.entry.model_dump() | changes))
        new_rows = self.rows([updated], created_at={entry_id: stored.created_at})
        merge = table.merge_insert("id").when_matched_update_all(where=_unchanged_since(stored.updated_at))
        if merge.execute(new_rows).num_updated_rows != 1:
            raise RuntimeError(f"commit conflict: {entry_id} was changed by another writer meanwhile")

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
            raise UserError(f"no knowledge entries with ids {_listed(missing)}" if missing else "nothing to delete")
        return self.write(
            author, "delete", summary or f"deleted {', '.join(ids)}", ids, lambda t: t.delete(id_filter(ids))
        )

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


def _unchanged_since(updated_at: str) -> str:
    """The merge condition `target.updated_at = <stamp>`; the stamp is one this module wrote, checked to be one."""
    if not _STAMP.fullmatch(updated_at):
        raise UserError(f"the stored entry has an unexpected timestamp {updated_at!r}; it cannot be edited safely")
    return f"target.updated_at = {value_to_sql(updated_at)}"


def _listed(ids: Sequence[str], limit: int = 10) -> str:
    """At most `limit` ids for a message, and how many more there are."""
    return ", ".join(ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _unique_ids(entries: Sequence[KnowledgeEntry]) -> list[str]:
    ids = [e.id for e in entries]
    if not ids:
        raise UserError("no entries given")
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise UserError(f"duplicate ids in one change: {_listed(duplicates)}")
    return ids
