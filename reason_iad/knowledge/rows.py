"""How knowledge entries become LanceDB rows and back, and what a store records about itself.

Rows carry the entry, its timestamps, the searchable body and its vectors (`entry_rows`); the meta table records
the embedders the vectors came from (`write_meta`, checked on every open); the search indexes are built once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from reason_iad.filters import one_of
from reason_iad.knowledge.embedders import Embedder
from reason_iad.knowledge.entry import KnowledgeEntry
from reason_iad.knowledge.schema import ENTRY_FIELDS, META_TABLE, MetaRow


@dataclass(frozen=True)
class StoredEntry:
    """An entry as stored, with its timestamps."""

    entry: KnowledgeEntry
    created_at: str
    updated_at: str


def now() -> str:
    """UTC timestamp, milliseconds (the stamps the edit compare-and-swap checks)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def stored_entry(row: dict) -> StoredEntry:
    """A table row as a `StoredEntry` (vectors dropped)."""
    return StoredEntry(KnowledgeEntry(**{k: row[k] for k in ENTRY_FIELDS}), row["created_at"], row["updated_at"])


def id_filter(ids: Sequence[str]):
    """A safe `id IN (...)` expression built from literals (never SQL text); flat, for any number of ids."""
    return one_of("id", ids)


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


def entry_rows(
    entries: Sequence[KnowledgeEntry],
    text_embedder: Embedder,
    image_embedder: Embedder | None,
    created_at: dict[str, str],
) -> list[dict]:
    """Arrow-ready rows with fresh vectors; `created_at` keeps the creation time of existing ids."""
    stamp = now()
    bodies = [f"{e.title}\n{e.text}" for e in entries]
    text_vectors = text_embedder.embed_texts(bodies)
    image_vectors = image_embedder.embed_texts(bodies) if image_embedder else None
    rows = []
    for i, entry in enumerate(entries):
        row = entry.model_dump() | {
            "created_at": created_at.get(entry.id, stamp),
            "updated_at": stamp,
            "body": bodies[i],
            "text_vector": text_vectors[i].tolist(),
        }
        if image_vectors is not None:
            row["image_vector"] = image_vectors[i].tolist()
        rows.append(row)
    return rows


def described(meta: dict[str, str]) -> str:
    """`text embedder minilm and image embedder tiny_clip` (or `no image embedder`) from an embedder record."""
    image = meta.get("image_embedder")
    images = f"image embedder {image}" if image else "no image embedder"
    return f"text embedder {meta.get('text_embedder') or '(none)'} and {images}"
