"""Category knowledge: validated entries, seed files, the versioned LanceDB store, search and retrieval."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from reason_iad.config import KnowledgeConfig
from reason_iad.paths import SEED_KNOWLEDGE_DIR, default_data_dir


def default_db_uri() -> str:
    """Where the knowledge base lives unless configured: `<data dir>/knowledge`."""
    return str(default_data_dir() / "knowledge")


def recorded_embedders(uri: str) -> tuple[str, str] | None:
    """The (text, image) embedder specs the knowledge base at `uri` was built with ("" image: none).

    None when there is no knowledge base there yet (or it predates the record).
    """
    import lancedb

    from reason_iad.knowledge.schema import KNOWLEDGE_TABLE, META_TABLE
    from reason_iad.lance_tables import has_table, is_object_store, open_table_or_none

    if not is_object_store(uri) and not Path(uri).is_dir():
        return None
    db = lancedb.connect(uri)
    meta_table = open_table_or_none(db, META_TABLE)
    if meta_table is None or not has_table(db, KNOWLEDGE_TABLE):
        return None
    meta = {row["key"]: row["value"] for row in meta_table.search().to_list()}
    if "text_embedder" not in meta:
        return None
    return _spec(meta["text_embedder"]), _spec(meta.get("image_embedder", ""))


def _spec(name: str) -> str:
    """The `make_embedder` spec of a recorded embedder name (an open_clip model without weights is `random`)."""
    return name.removesuffix(":random") if name.startswith("open_clip:") else name


def follow_store(
    config: KnowledgeConfig, text_embedder: str | None = None, image_embedder: str | None = None
) -> KnowledgeConfig:
    """`config` with the embedders to open its knowledge base with.

    An embedder given here (a user's flag) wins; otherwise an existing knowledge base is opened with the
    embedders it records; a new one is created with `config`'s. `image_embedder` "" or "none" means none.
    """
    recorded = recorded_embedders(config.db_uri or default_db_uri())
    text, image = recorded or (config.text_embedder, config.image_embedder)
    if text_embedder is not None:
        text = text_embedder
    if image_embedder is not None:
        image = "" if image_embedder.strip().lower() in ("", "none") else image_embedder
    return dataclasses.replace(config, text_embedder=text, image_embedder=image)


def open_store(config: KnowledgeConfig, seed_dir: Path | None = SEED_KNOWLEDGE_DIR):
    """Open the configured knowledge base, creating and seeding it from `knowledge/*.jsonl` on first use."""
    import lancedb

    from reason_iad.knowledge.embedders import make_embedder
    from reason_iad.knowledge.schema import KNOWLEDGE_TABLE
    from reason_iad.knowledge.seed import load_seed_entries
    from reason_iad.knowledge.store import KnowledgeStore
    from reason_iad.lance_tables import has_table, is_object_store

    uri = config.db_uri or default_db_uri()
    if not is_object_store(uri):
        Path(uri).mkdir(parents=True, exist_ok=True)
    exists = has_table(lancedb.connect(uri), KNOWLEDGE_TABLE)  # a table whose creation was cut off is absent
    seed = load_seed_entries(seed_dir) if seed_dir is not None and not exists else []
    text = make_embedder(config.text_embedder)
    image = make_embedder(config.image_embedder) if config.image_embedder else None
    return KnowledgeStore(uri, text, image, seed=seed)
