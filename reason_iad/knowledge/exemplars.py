"""Normal exemplars: known-good images per category, kept beside the knowledge in the same LanceDB database.

One-shot inspection fetches the nearest exemplar of the category as its template (MMAD's `similar_templates`
idea); the visual memory builds its banks from them. Seeded from the committed gallery (`examples/`).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import lancedb
from lancedb.pydantic import LanceModel, Vector
from PIL import Image
from pydantic import create_model

from reason_iad.errors import UserError
from reason_iad.filters import all_of, equal_to
from reason_iad.images import load_image, png_bytes
from reason_iad.knowledge.embedders import Embedder
from reason_iad.lance_tables import open_table_or_none

EXEMPLAR_TABLE = "exemplars"
_LOCK = threading.RLock()


@dataclass(frozen=True)
class Exemplar:
    """One stored normal image."""

    id: str
    dataset: str
    category: str
    image: Image.Image
    author: str
    note: str
    created_at: str


def _model(dim: int) -> type[LanceModel]:
    fields: dict = {name: (str, ...) for name in ("id", "dataset", "category", "author", "note", "created_at")}
    fields |= {"png": (bytes, ...), "vector": (Vector(dim), ...)}
    return create_model("ExemplarRow", __base__=LanceModel, **fields)


class ExemplarStore:
    """Add, remove, list and look up normal exemplars; every change is a new table version."""

    def __init__(self, uri: str | Path, embedder: Embedder) -> None:
        self.embedder = embedder
        db = lancedb.connect(str(uri))
        with _LOCK:
            table = open_table_or_none(db, EXEMPLAR_TABLE)  # absent, or its creation was cut off
            if table is None:
                table = db.create_table(EXEMPLAR_TABLE, schema=_model(embedder.dim), exist_ok=True)
        self.table = table
        dim = self.table.schema.field("vector").type.list_size
        if dim != embedder.dim:
            raise UserError(f"exemplars were embedded with {dim}-d vectors; {embedder.name} gives {embedder.dim}")

    def add(self, image, dataset: str, category: str, author: str, note: str = "") -> str:
        """Store a normal image (any readable input; normalised to RGB); returns its id."""
        if not dataset.strip() or not category.strip() or not author.strip():
            raise UserError("an exemplar needs a dataset, a category and an author")
        picture = load_image(image, "exemplar")
        count = self._count(equal_to("category", category))
        exemplar_id = f"{dataset}/{category}/{count:04d}-{dt.datetime.now(dt.UTC).strftime('%H%M%S%f')}".lower()
        row = {
            "id": exemplar_id,
            "dataset": dataset,
            "category": category,
            "author": author.strip(),
            "note": note,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "png": png_bytes(picture),
            "vector": self.embedder.embed_images([picture])[0].tolist(),
        }
        with _LOCK:
            self.table.add([row])
        return exemplar_id

    def remove(self, exemplar_id: str) -> None:
        """Delete one exemplar by id (unknown ids are refused)."""
        with _LOCK:
            self.table.checkout_latest()
            if not self._count(equal_to("id", exemplar_id)):
                raise UserError(f"no exemplar with id {exemplar_id!r}")
            self.table.delete(equal_to("id", exemplar_id))

    def list(self, category: str | None = None, dataset: str | None = None) -> list[Exemplar]:
        """Exemplars, optionally of one category (and dataset), oldest first."""
        self.table.checkout_latest()
        query = self.table.search()
        condition = all_of(equal_to(k, v) for k, v in (("category", category), ("dataset", dataset)) if v)
        if condition is not None:
            query = query.where(condition)
        rows = query.limit(max(self.table.count_rows(), 1)).to_list()
        return sorted((self._exemplar(r) for r in rows), key=lambda e: (e.created_at, e.id))

    def nearest(self, image: Image.Image, category: str, dataset: str | None = None) -> Exemplar | None:
        """The exemplar of the category most similar to `image`, or None when the category has none."""
        condition = all_of(equal_to(k, v) for k, v in (("category", category), ("dataset", dataset)) if v)
        return self._nearest(image, condition)

    def nearest_any(self, image: Image.Image) -> Exemplar | None:
        """The most similar exemplar of any category (used to guess an image's category)."""
        return self._nearest(image, None)

    def _nearest(self, image: Image.Image, condition) -> Exemplar | None:
        self.table.checkout_latest()
        if not self.table.count_rows():
            return None
        query = self.table.search(self.embedder.embed_images([image])[0]).distance_type("cosine")
        if condition is not None:
            query = query.where(condition, prefilter=True)
        rows = query.limit(1).to_list()
        return self._exemplar(rows[0]) if rows else None

    def _count(self, condition) -> int:
        """Rows matching a `lancedb.expr` condition (`count_rows` only takes SQL text, which we never build)."""
        self.table.checkout_latest()
        total = self.table.count_rows()
        return len(self.table.search().where(condition).select(["id"]).limit(max(total, 1)).to_list()) if total else 0

    @property
    def version(self) -> int:
        """Latest version of the exemplar table."""
        self.table.checkout_latest()
        return self.table.version

    @staticmethod
    def _exemplar(row: dict) -> Exemplar:
        image = Image.open(io.BytesIO(row["png"])).convert("RGB")
        return Exemplar(
            row["id"], row["dataset"], row["category"], image, row["author"], row["note"], row["created_at"]
        )


def seed_exemplars(store: ExemplarStore, examples_dir: Path) -> int:
    """Add the gallery's normal images once (when the table is empty); returns how many were added."""
    index = examples_dir / "index.json"
    if store.table.count_rows() or not index.is_file():
        return 0
    normals = [row for row in json.loads(index.read_text(encoding="utf-8")) if row["defect"] == "good"]
    for row in normals:
        store.add(examples_dir / row["image"], row["dataset"], row["category"], author="seed", note="example gallery")
    return len(normals)
