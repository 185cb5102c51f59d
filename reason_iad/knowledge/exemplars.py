"""Normal exemplars: known-good images per category, kept beside the knowledge in the same LanceDB database.

One-shot inspection fetches the nearest exemplar of the category as its template (MMAD's `similar_templates`
idea); the visual memory builds its banks from them. Seeded from the committed gallery (`examples/`) when created.
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
from reason_iad.lance_tables import commit_retrying, create_table_once

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

    def __init__(self, uri: str | Path, embedder: Embedder, seed_dir: Path | None = None) -> None:
        """Open the exemplars at `uri`, creating the table when absent.

        A table created here holds `seed_dir`'s gallery normals (`index.json` rows labelled good) in its first commit,
        so replicas starting together never seed twice.
        """
        self.embedder = embedder
        db = lancedb.connect(str(uri))
        with _LOCK:
            self.table = create_table_once(db, EXEMPLAR_TABLE, _model(embedder.dim), lambda: self._gallery(seed_dir))
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
        row = self._row(exemplar_id, picture, dataset, category, author.strip(), note)
        with _LOCK:
            commit_retrying(self.table, lambda table: table.add([row]))
        return exemplar_id

    def _row(self, exemplar_id: str, picture: Image.Image, dataset: str, category: str, author: str, note: str):
        return {
            "id": exemplar_id,
            "dataset": dataset,
            "category": category,
            "author": author,
            "note": note,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "png": png_bytes(picture),
            "vector": self.embedder.embed_images([picture])[0].tolist(),
        }

    def _gallery(self, examples_dir: Path | None) -> list[dict]:
        """Rows of the gallery's normal images, with ids that are the same in every process."""
        index = examples_dir / "index.json" if examples_dir is not None else None
        if index is None or not index.is_file():
            return []
        normals = [row for row in json.loads(index.read_text(encoding="utf-8")) if row["defect"] == "good"]
        return [
            self._row(
                f"{row['dataset']}/{row['category']}/seed-{n:04d}".lower(),
                load_image(examples_dir / row["image"], "exemplar"),
                row["dataset"],
                row["category"],
                "seed",
                "example gallery",
            )
            for n, row in enumerate(normals)
        ]

    def remove(self, exemplar_id: str) -> None:
        """Delete one exemplar by id (unknown ids are refused)."""
        with _LOCK:
            if not self._count(equal_to("id", exemplar_id)):
                raise UserError(f"no exemplar with id {exemplar_id!r}")
            commit_retrying(self.table, lambda table: table.delete(equal_to("id", exemplar_id)))

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
