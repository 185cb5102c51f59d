"""LanceDB row schemas (pydantic `LanceModel`s) of the knowledge base; vector sizes follow the embedders."""

from __future__ import annotations

from lancedb.pydantic import LanceModel, Vector
from pydantic import create_model

KNOWLEDGE_TABLE = "knowledge"
HISTORY_TABLE = "knowledge_history"
META_TABLE = "knowledge_meta"
ENTRY_FIELDS = ("id", "dataset", "category", "defect", "title", "text", "source", "author")


def knowledge_model(text_dim: int, image_dim: int | None) -> type[LanceModel]:
    """The knowledge row model for the given vector sizes.

    Entry fields, timestamps, `body` (title + text, the full-text index), `text_vector` (semantic text search)
    and, with an image embedder, `image_vector` (the entry embedded in the image model's space, for image ->
    knowledge retrieval).
    """
    fields: dict = {name: (str, ...) for name in (*ENTRY_FIELDS, "created_at", "updated_at", "body")}
    fields["text_vector"] = (Vector(text_dim), ...)
    if image_dim is not None:
        fields["image_vector"] = (Vector(image_dim), ...)
    return create_model("KnowledgeRow", __base__=LanceModel, **fields)


class HistoryRow(LanceModel):
    """One change: the knowledge-table version it produced, who, when, what."""

    version: int
    timestamp: str
    author: str
    action: str
    summary: str
    ids: str  # JSON list of the entry ids touched


class MetaRow(LanceModel):
    """Key/value facts about the store (which embedders built the vectors)."""

    key: str
    value: str
