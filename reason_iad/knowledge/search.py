"""Searching the knowledge base, and the engine's retrieval.

Full text (native FTS), semantic text, hybrid and by image; retrieval gives the top-k entries of a category
for a query image plus the category's normal entry.

Filters are `lancedb.expr` expressions built from literals; the query text itself never becomes SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from lancedb.expr import col, lit
from PIL import Image

from reason_iad.errors import UserError
from reason_iad.filters import all_of, equal_to
from reason_iad.knowledge.entry import NORMAL_KEY, KnowledgeEntry
from reason_iad.knowledge.rows import stored_entry
from reason_iad.knowledge.store import KnowledgeStore

SearchMode = Literal["fts", "semantic", "hybrid"]
MAX_QUERY_CHARS = 1000


@dataclass(frozen=True)
class Hit:
    """A knowledge entry found by a search, with its score (higher is better; comparable within one search)."""

    entry: KnowledgeEntry
    score: float


@dataclass(frozen=True)
class Retrieval:
    """What the engine gets: the chosen entries, how they were chosen, and the knowledge version used."""

    hits: tuple[Hit, ...]
    method: str  # "image", "question" or "all"
    version: int

    @property
    def texts(self) -> tuple[str, ...]:
        """The entries as prompt text (MMAD's `<Title>` convention)."""
        return tuple(hit.entry.mmad_text for hit in self.hits)


def scope(dataset: str | None = None, category: str | None = None, exclude_normal: bool = False):
    """A safe filter for a dataset/category scope (None: everything)."""
    terms = [equal_to(name, value) for name, value in (("dataset", dataset), ("category", category)) if value]
    if exclude_normal:
        terms.append(col("defect") != lit(NORMAL_KEY))
    return all_of(terms)


def _hits(rows: list[dict], score_of) -> list[Hit]:
    return [Hit(stored_entry(r).entry, float(score_of(r))) for r in rows]


def search(
    store: KnowledgeStore,
    query: str,
    mode: SearchMode = "hybrid",
    k: int = 10,
    dataset: str | None = None,
    category: str | None = None,
) -> list[Hit]:
    """Search entry titles and texts: `fts` (keywords), `semantic` (sentence embeddings) or `hybrid` (both, RRF)."""
    query = query.strip()
    if not query:
        raise UserError("the search query is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise UserError(f"the search query is longer than {MAX_QUERY_CHARS} characters")
    if not 1 <= k <= 1000:
        raise UserError("k must be between 1 and 1000")
    store.refresh()
    table = store.table
    where = scope(dataset, category)
    if mode == "fts":
        builder, score_of = table.search(query, query_type="fts", fts_columns="body"), lambda r: r["_score"]
    elif mode == "semantic":
        vector = store.text_embedder.embed_texts([query])[0]
        builder = table.search(vector, vector_column_name="text_vector").distance_type("cosine")
        score_of = lambda r: 1.0 - r["_distance"]  # noqa: E731
    elif mode == "hybrid":
        vector = store.text_embedder.embed_texts([query])[0]
        builder = table.search(query_type="hybrid", vector_column_name="text_vector").vector(vector).text(query)
        score_of = lambda r: r["_relevance_score"]  # noqa: E731
    else:
        raise UserError(f"unknown search mode {mode!r}: use fts, semantic or hybrid")
    if where is not None:
        builder = builder.where(where, prefilter=True)
    return _hits(builder.limit(k).to_list(), score_of)


def search_by_image(
    store: KnowledgeStore,
    image: Image.Image,
    k: int = 3,
    dataset: str | None = None,
    category: str | None = None,
    exclude_normal: bool = True,
    focus: tuple[int, int, int, int] | None = None,
) -> list[Hit]:
    """Entries closest to an image in the image embedder's space (cosine similarity).

    With `focus` (a pixel box), the query is the normalised mean of the whole image's embedding (which knows the
    object) and that of a square crop around the box (`memory.evidence.focus_crop`, which sees a small defect).
    """
    if store.image_embedder is None:
        raise UserError("this knowledge base has no image embedder; configure one (e.g. an open_clip model)")
    return search_by_vector(
        store, query_vector(store.image_embedder, image, focus), k, dataset, category, exclude_normal
    )


def search_by_vector(
    store: KnowledgeStore,
    vector: np.ndarray,
    k: int = 3,
    dataset: str | None = None,
    category: str | None = None,
    exclude_normal: bool = True,
) -> list[Hit]:
    """Entries closest to an image embedding already computed with the store's image embedder (`query_vector`)."""
    store.refresh()
    builder = store.table.search(vector, vector_column_name="image_vector").distance_type("cosine")
    where = scope(dataset, category, exclude_normal)
    if where is not None:
        builder = builder.where(where, prefilter=True)
    return _hits(builder.limit(k).to_list(), lambda r: 1.0 - r["_distance"])


def query_vector(embedder, image: Image.Image, focus: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """The image embedding used for retrieval: the whole image's, or its mean with the focus crop's (normalised)."""
    if focus is None:
        return embedder.embed_images([image])[0]
    from reason_iad.memory.evidence import focus_crop

    both = embedder.embed_images([image, focus_crop(image, focus)])
    mean = both.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def retrieve(
    store: KnowledgeStore,
    image: Image.Image,
    category: str | None = None,
    dataset: str | None = None,
    k: int = 3,
    include_normal: bool = True,
    question: str | None = None,
    focus: tuple[int, int, int, int] | None = None,
) -> Retrieval:
    """Knowledge for one inspection: top-k defect entries of the category plus its normal entry.

    Entries are ranked by the image when an image embedder is configured, else by the question's meaning; with
    neither, all entries of the category are used, as MMAD does. `focus` (a pixel box, e.g. the visual memory's
    most anomalous region) adds a square crop around it to the image query (see `search_by_image`).
    """
    version = store.version
    if store.image_embedder is not None:
        hits = search_by_image(store, image, k, dataset, category, focus=focus)
        method = "image" if focus is None else "image + anomaly crop"
    elif question and category:
        ranked = search(store, question, "semantic", k + 1, dataset, category)
        hits, method = [h for h in ranked if h.entry.defect != NORMAL_KEY][:k], "question"
    elif category:
        hits = [Hit(s.entry, 1.0) for s in store.list(dataset, category) if s.entry.defect != NORMAL_KEY]
        method = "all"
    else:
        raise UserError("without an image embedder, knowledge retrieval needs a category")
    if include_normal and category:
        normal = [s for s in store.list(dataset, category) if s.entry.defect == NORMAL_KEY]
        hits = hits + [Hit(s.entry, 1.0) for s in normal[:1]]
    return Retrieval(tuple(hits), method, version)


def categories(store: KnowledgeStore) -> Sequence[tuple[str, str]]:
    """All (dataset, category) pairs present, sorted."""
    return sorted({(s.entry.dataset, s.entry.category) for s in store.list()})
