"""Re-embedding the knowledge base after the embedders change (a new version; earlier ones stay readable)."""

from __future__ import annotations

from collections.abc import Callable

import lancedb

from reason_iad.knowledge.embedders import Embedder
from reason_iad.knowledge.rows import create_search_indexes, entry_rows, now, stored_entry, write_meta
from reason_iad.knowledge.schema import HISTORY_TABLE, KNOWLEDGE_TABLE, HistoryRow, knowledge_model
from reason_iad.knowledge.store import KnowledgeStore

BATCH = 64


def reembed(
    uri: str,
    text_embedder: Embedder,
    image_embedder: Embedder | None,
    author: str,
    progress: Callable[[int], None] | None = None,
) -> KnowledgeStore:
    """Recompute every entry's vectors with new embedders (any dimensions) and return the reopened store."""
    db = lancedb.connect(uri)
    table = db.open_table(KNOWLEDGE_TABLE)
    stored = [stored_entry(r) for r in table.search().limit(max(table.count_rows(), 1)).to_list()]
    rows = []
    for start in range(0, len(stored), BATCH):
        batch = stored[start : start + BATCH]
        new_rows = entry_rows(
            [s.entry for s in batch],
            text_embedder,
            image_embedder,
            created_at={s.entry.id: s.created_at for s in batch},
        )
        for row, old in zip(new_rows, batch, strict=True):
            row["updated_at"] = old.updated_at  # re-embedding does not edit the entry
        rows += new_rows
        if progress:
            progress(len(batch))
    model = knowledge_model(text_embedder.dim, image_embedder.dim if image_embedder else None)
    table = db.create_table(KNOWLEDGE_TABLE, data=rows or None, schema=model, mode="overwrite")  # one commit
    create_search_indexes(table)
    write_meta(db, text_embedder, image_embedder)
    names = f"{text_embedder.name}" + (f" + {image_embedder.name}" if image_embedder else "")
    db.open_table(HISTORY_TABLE).add(
        [
            HistoryRow(
                version=table.version,
                timestamp=now(),
                author=author,
                action="reembed",
                summary=f"re-embedded {len(rows)} entries with {names}",
                ids="[]",
            )
        ]
    )
    return KnowledgeStore(uri, text_embedder, image_embedder)
