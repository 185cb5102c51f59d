"""Category knowledge: validated entries, seed files, the versioned LanceDB store, search and retrieval."""

from __future__ import annotations

from pathlib import Path

from reason_iad.config import KnowledgeConfig
from reason_iad.paths import SEED_KNOWLEDGE_DIR, default_data_dir


def default_db_uri() -> str:
    """Where the knowledge base lives unless configured: `<data dir>/knowledge`."""
    return str(default_data_dir() / "knowledge")


def open_store(config: KnowledgeConfig, seed_dir: Path | None = SEED_KNOWLEDGE_DIR):
    """Open the configured knowledge base, creating and seeding it from `knowledge/*.jsonl` on first use."""
    import lancedb

    from reason_iad.knowledge.embedders import make_embedder
    from reason_iad.knowledge.schema import KNOWLEDGE_TABLE
    from reason_iad.knowledge.seed import load_seed_entries
    from reason_iad.knowledge.store import KnowledgeStore

    uri = config.db_uri or default_db_uri()
    if "://" not in uri:
        Path(uri).mkdir(parents=True, exist_ok=True)
    exists = KNOWLEDGE_TABLE in lancedb.connect(uri).list_tables().tables
    seed = load_seed_entries(seed_dir) if seed_dir is not None and not exists else []
    text = make_embedder(config.text_embedder)
    image = make_embedder(config.image_embedder) if config.image_embedder else None
    return KnowledgeStore(uri, text, image, seed=seed)
