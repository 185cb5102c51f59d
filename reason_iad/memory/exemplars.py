"""Normal exemplars: the one table of known-good images per category, in the knowledge base's LanceDB folder.

Every normal image has one home and one id. One-shot inspection takes the category's nearest exemplar as its
template (MMAD's `similar_templates` idea) and the visual memory builds each category's bank from the same rows, so
adding or removing an exemplar changes both (`VisualMemory.add_exemplars` / `remove_exemplars` write here and
update the bank in one call).

An exemplar's id is a content hash of its dataset, category and pixels: the same image added twice to a category
is stored once, and every replica computes the same ids for the same seed rows. A table created here holds its
seed rows (and the rows of the two tables it replaces, `exemplars` and `memory_exemplars`, when an older release
left them) in its first commit, so replicas starting together never seed twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa
from PIL import Image

from reason_iad.errors import UserError
from reason_iad.filters import all_of, equal_to, one_of
from reason_iad.images import load_image, png_bytes
from reason_iad.lance_tables import commit_retrying, create_table_once, open_table_or_none

EXEMPLAR_TABLE = "normal_exemplars"
LEGACY_TABLES = ("exemplars", "memory_exemplars")  # the template table and the memory's table before they merged
THUMBNAIL_SIDE = 16
THUMBNAIL_DIM = THUMBNAIL_SIDE * THUMBNAIL_SIDE * 3
MAX_TEXT_LENGTH = 200
MIN_EXEMPLAR_SIDE = 32  # smaller images carry too few pixels for patch features
_LOCK = threading.RLock()

EXEMPLAR_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("dataset", pa.string()),
        ("category", pa.string()),
        ("label", pa.string()),
        ("author", pa.string()),
        ("note", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("added_at", pa.string()),
        ("png", pa.binary()),
        ("vector", pa.list_(pa.float32(), THUMBNAIL_DIM)),
    ]
)
_COLUMNS = [f.name for f in EXEMPLAR_SCHEMA if f.name not in ("png", "vector")]


@dataclass(frozen=True)
class ExemplarRecord:
    """A stored normal exemplar, without its pixels."""

    id: str
    dataset: str
    category: str
    label: str
    author: str
    note: str
    width: int
    height: int
    added_at: str


@dataclass(frozen=True)
class Exemplar:
    """A stored normal exemplar with its image."""

    record: ExemplarRecord
    image: Image.Image

    @property
    def id(self) -> str:
        """The exemplar's id."""
        return self.record.id

    @property
    def dataset(self) -> str:
        """Its dataset."""
        return self.record.dataset

    @property
    def category(self) -> str:
        """Its category."""
        return self.record.category


@dataclass(frozen=True)
class NewExemplar:
    """An image to store, with its names (validated and normalised by `ExemplarStore.rows`)."""

    image: Image.Image
    dataset: str
    category: str
    label: str
    author: str = ""
    note: str = ""


def check_name(kind: str, value: str) -> str:
    """`value` when it is a non-empty printable name of at most `MAX_TEXT_LENGTH` characters, else a `UserError`."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT_LENGTH or not value.isprintable():
        raise UserError(f"{kind} must be a non-empty printable name of at most {MAX_TEXT_LENGTH} characters")
    return value


def prepare_exemplar(source, label: str) -> Image.Image:
    """Read and normalise one exemplar (RGB, orientation, bit depth), refusing unusable ones clearly."""
    image = load_image(source, name=label)
    if min(image.size) < MIN_EXEMPLAR_SIDE:
        raise UserError(
            f"exemplar {label} is {image.size[0]}x{image.size[1]}; normal exemplars need at least "
            f"{MIN_EXEMPLAR_SIDE} pixels per side"
        )
    return image


def exemplar_id(dataset: str, category: str, image: Image.Image) -> str:
    """Content id of a normalised RGB image in a category (same category and pixels, same id)."""
    digest = hashlib.sha256(f"{dataset}\0{category}\0{image.size}\0".encode() + image.tobytes())
    return digest.hexdigest()[:16]


def thumbnails(images: Sequence[Image.Image]) -> np.ndarray:
    """Mean-centred 16x16 colour thumbnails, L2-normalised: float32 [N, 768], a cheap real image similarity."""
    side = (THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    thumbs = np.stack([np.asarray(i.convert("RGB").resize(side), np.float32).ravel() for i in images])
    thumbs = thumbs - thumbs.mean(axis=1, keepdims=True) + 1e-3
    return (thumbs / np.linalg.norm(thumbs, axis=1, keepdims=True)).astype(np.float32)


def now() -> str:
    """UTC timestamp, milliseconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class ExemplarStore:
    """Add, remove, list and look up normal exemplars; every change is a new table version."""

    def __init__(self, uri: str | Path, seed: Callable[[], list[NewExemplar]] | None = None) -> None:
        """Open the exemplars in the LanceDB folder `uri`, creating the table when absent.

        Args:
            uri: LanceDB folder or object-store URI.
            seed: The images a new table starts with (called only when the table is created here).
        """
        self.uri = str(uri)
        self.db = lancedb.connect(self.uri)
        with _LOCK:
            self.table = create_table_once(self.db, EXEMPLAR_TABLE, EXEMPLAR_SCHEMA, lambda: self._first_rows(seed))

    # ------------------------------------------------------------------ writes
    def rows(self, items: Iterable[NewExemplar]) -> list[dict]:
        """Table rows for new exemplars, one per distinct id (names checked; nothing is written)."""
        return [self._row(key, item) for key, item in _distinct(items).items()]

    @staticmethod
    def _row(key: str, item: NewExemplar) -> dict:
        return {
            "id": key,
            "dataset": item.dataset,
            "category": item.category,
            "label": item.label[:MAX_TEXT_LENGTH],
            "author": item.author[:MAX_TEXT_LENGTH],
            "note": item.note[:MAX_TEXT_LENGTH],
            "width": item.image.size[0],
            "height": item.image.size[1],
            "added_at": now(),
            "png": png_bytes(item.image),
            "vector": thumbnails([item.image])[0],
        }

    @staticmethod
    def prepare(
        dataset: str,
        category: str,
        images: Sequence,
        labels: Sequence[str] | None = None,
        author: str = "",
        note: str = "",
    ) -> list[NewExemplar]:
        """Checked names and decoded images (paths, bytes or PIL; at least 32 px a side), ready for `add_many`.

        Labels default to the file names or "exemplar N". Raises `UserError` before anything is written.
        """
        dataset, category = check_name("dataset", dataset), check_name("category", category)
        labels = list(labels) if labels is not None else [_default_label(s, i) for i, s in enumerate(images)]
        if len(labels) != len(images):
            raise UserError(f"got {len(images)} images but {len(labels)} labels")
        return [
            NewExemplar(prepare_exemplar(image, label), dataset, category, label, author, note)
            for image, label in zip(images, labels, strict=True)
        ]

    def add(self, image, dataset: str, category: str, author: str = "", note: str = "", label: str = "") -> str:
        """Store one normal image (any readable input, at least 32 px a side; normalised to RGB); returns its id."""
        [key], _ = self.add_many(self.prepare(dataset, category, [image], [label or "exemplar"], author, note))
        return key

    def add_many(self, items: Sequence[NewExemplar]) -> tuple[list[str], list[str]]:
        """Store new exemplars in one commit; returns (the id of every item in order, the ids already stored).

        Each image is hashed once; only images not stored yet are encoded (PNG and thumbnail).
        """
        keys = [exemplar_id(i.dataset, i.category, i.image) for i in items]
        with _LOCK:
            known = set(self._ids(one_of("id", keys))) if keys else set()
            fresh = _distinct(items, keys, skip=known)
            if fresh:
                table = pa.Table.from_pylist([self._row(k, i) for k, i in fresh.items()], schema=EXEMPLAR_SCHEMA)
                commit_retrying(self.table, lambda exemplars: exemplars.add(table))
        return keys, [key for key in keys if key in known]

    def remove(self, ids: Sequence[str], dataset: str | None = None, category: str | None = None) -> None:
        """Delete exemplars by id in one commit (ids not stored, or not of the given category, are refused)."""
        if not ids:
            return
        condition = all_of([one_of("id", ids), *_names(dataset, category)])
        with _LOCK:
            unknown = sorted(set(ids) - set(self._ids(condition)))
            if unknown:
                owner = f"{dataset}/{category}" if dataset and category else category or "the table"
                raise UserError(f"{owner} has no exemplar {unknown[0]!r}")
            commit_retrying(self.table, lambda exemplars: exemplars.delete(condition))

    # ------------------------------------------------------------------ reads
    def records(self, category: str | None = None, dataset: str | None = None) -> list[ExemplarRecord]:
        """Exemplars without pixels, optionally of one category (and dataset), sorted by id."""
        rows = self._query(all_of(_names(dataset, category))).select(_COLUMNS).to_list()
        return sorted((ExemplarRecord(**{k: row[k] for k in _COLUMNS}) for row in rows), key=lambda r: r.id)

    def list(self, category: str | None = None, dataset: str | None = None) -> list[Exemplar]:
        """Exemplars with their images, optionally of one category (and dataset), oldest first."""
        rows = self._query(all_of(_names(dataset, category))).select([*_COLUMNS, "png"]).to_list()
        found = [_exemplar(row) for row in rows]
        return sorted(found, key=lambda e: (e.record.added_at, e.id))

    def images(self, dataset: str, category: str, ids: Sequence[str] | None = None) -> dict[str, Image.Image]:
        """The category's exemplar images by id (only `ids`, when given; unknown ones are absent)."""
        condition = all_of([*_names(dataset, category), *([one_of("id", ids)] if ids else [])])
        rows = self._query(condition).select(["id", "png"]).to_list()
        return {row["id"]: Image.open(io.BytesIO(row["png"])).convert("RGB") for row in rows}

    def categories(self) -> list[tuple[str, str]]:
        """(dataset, category) pairs that have exemplars, sorted."""
        table = self._query(None).select(["dataset", "category"]).to_arrow()
        return sorted(set(zip(table["dataset"].to_pylist(), table["category"].to_pylist(), strict=True)))

    def nearest(self, image: Image.Image, category: str | None, dataset: str | None = None) -> Exemplar | None:
        """The exemplar most similar to `image` (of the category, when given), or None when there is none."""
        self.table.checkout_latest()
        if not self.table.count_rows():
            return None
        query = self.table.search(thumbnails([image])[0]).distance_type("cosine")
        condition = all_of(_names(dataset, category))
        if condition is not None:
            query = query.where(condition, prefilter=True)
        rows = query.limit(1).to_list()
        return _exemplar(rows[0]) if rows else None

    @property
    def version(self) -> int:
        """Latest version of the exemplar table."""
        self.table.checkout_latest()
        return self.table.version

    def _ids(self, condition) -> list[str]:
        return [row["id"] for row in self._query(condition).select(["id"]).to_list()]

    def _query(self, condition):
        self.table.checkout_latest()
        query = self.table.search()
        return (query.where(condition) if condition is not None else query).limit(None)

    # ------------------------------------------------------------------ creation
    def _first_rows(self, seed: Callable[[], list[NewExemplar]] | None) -> list[dict]:
        """Rows a new table starts with: the legacy tables' exemplars, then the seed images (one per id)."""
        items = [*self._legacy(), *(seed() if seed is not None else [])]
        return self.rows(items)

    def _legacy(self) -> list[NewExemplar]:
        """Exemplars an older release kept in its two tables (read, never changed)."""
        found = []
        for name in LEGACY_TABLES:
            table = open_table_or_none(self.db, name)
            if table is None:
                continue
            for row in table.search().limit(None).to_list():
                image = Image.open(io.BytesIO(row["png"])).convert("RGB")
                label = row.get("label") or row.get("note") or ""
                found.append(
                    NewExemplar(image, row["dataset"], row["category"], label, row.get("author", ""), "migrated")
                )
        return found


def _distinct(
    items: Iterable[NewExemplar], keys: Sequence[str] | None = None, skip: set[str] = frozenset()
) -> dict[str, NewExemplar]:
    """The items by id (names checked), first of each id, leaving out the ids in `skip`."""
    items = list(items)
    keys = keys if keys is not None else [exemplar_id(i.dataset, i.category, i.image) for i in items]
    found: dict[str, NewExemplar] = {}
    for key, item in zip(keys, items, strict=True):
        check_name("dataset", item.dataset)
        check_name("category", item.category)
        if key not in skip:
            found.setdefault(key, item)
    return found


def _default_label(source, index: int) -> str:
    return Path(source).name if isinstance(source, str | Path) else f"exemplar {index + 1}"


def _names(dataset: str | None, category: str | None) -> list:
    return [equal_to(k, v) for k, v in (("dataset", dataset), ("category", category)) if v]


def _exemplar(row: dict) -> Exemplar:
    record = ExemplarRecord(**{k: row[k] for k in _COLUMNS})
    return Exemplar(record, Image.open(io.BytesIO(row["png"])).convert("RGB"))
