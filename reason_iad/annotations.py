"""Annotations made in the studio: labelled images with optional defect masks, kept in LanceDB.

`questions_for` turns an annotation's labels into MMAD questions; `reason_iad.exports` writes the annotations as
MMAD, MVTec AD or COCO datasets.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
from dataclasses import dataclass
from pathlib import Path

import lancedb
import numpy as np
from lancedb.pydantic import LanceModel
from PIL import Image

from reason_iad.errors import UserError
from reason_iad.filters import equal_to
from reason_iad.images import load_image, png_bytes
from reason_iad.lance_tables import commit_retrying, create_table_once
from reason_iad.mmad import ANOMALY_QUESTION, MMADQuestion
from reason_iad.synth.shapes import REGIONS, region_of

ANNOTATION_TABLE = "annotations"
LABELS = ("normal", "defective")
_LOCK = threading.RLock()


class AnnotationRow(LanceModel):
    """One stored annotation (images as PNG bytes)."""

    id: str
    dataset: str
    category: str
    label: str
    defect: str
    note: str
    author: str
    created_at: str
    model_answer: str
    corrected_answer: str
    image_png: bytes
    mask_png: bytes  # empty for no mask


@dataclass(frozen=True)
class Annotation:
    """An annotation as the studio and the export see it."""

    id: str
    dataset: str
    category: str
    label: str
    defect: str
    note: str
    author: str
    created_at: str
    image: Image.Image
    mask: Image.Image | None  # L mode, 255 = defect
    model_answer: str = ""  # the model's answer beside the correction ("B. Yes."), when one was saved
    corrected_answer: str = ""


def _mask(mask, size: tuple[int, int]) -> Image.Image | None:
    if mask is None:
        return None
    array = np.asarray(mask.convert("L") if isinstance(mask, Image.Image) else mask)
    if array.ndim == 3:
        array = array.max(axis=-1)
    binary = Image.fromarray(((array > 0) * 255).astype(np.uint8))
    if binary.size != size:
        binary = binary.resize(size, Image.Resampling.NEAREST)
    return binary if np.asarray(binary).any() else None


class AnnotationStore:
    """Add, list and remove annotations in the studio's LanceDB database."""

    def __init__(self, uri: str | Path) -> None:
        db = lancedb.connect(str(uri))
        with _LOCK:
            self.table = create_table_once(db, ANNOTATION_TABLE, AnnotationRow)  # absent, or its creation cut off

    def add(
        self,
        image,
        label: str,
        dataset: str,
        category: str,
        author: str,
        defect: str = "",
        note: str = "",
        mask=None,
        model_answer: str = "",
        corrected_answer: str = "",
    ) -> str:
        """Validate and store one annotation; returns its id. Defective images need a defect type."""
        if label not in LABELS:
            raise UserError(f"label must be one of {LABELS}")
        if not dataset.strip() or not category.strip() or not author.strip():
            raise UserError("an annotation needs a dataset, a category and an author")
        if label == "defective" and not defect.strip():
            raise UserError("name the defect type of a defective image")
        picture = load_image(image, "annotated image")
        region = _mask(mask, picture.size) if label == "defective" else None
        now = dt.datetime.now(dt.UTC)
        annotation_id = f"{dataset}/{category}/{now.strftime('%Y%m%d%H%M%S%f')}".lower()
        row = AnnotationRow(
            id=annotation_id,
            dataset=dataset.strip(),
            category=category.strip(),
            label=label,
            defect=defect.strip() if label == "defective" else "good",
            note=note,
            author=author.strip(),
            created_at=now.isoformat(timespec="seconds"),
            model_answer=model_answer,
            corrected_answer=corrected_answer,
            image_png=png_bytes(picture),
            mask_png=png_bytes(region) if region is not None else b"",
        )
        with _LOCK:
            commit_retrying(self.table, lambda table: table.add([row]))
        return annotation_id

    def list(self, dataset: str | None = None) -> list[Annotation]:
        """All annotations (optionally of one dataset), oldest first."""
        self.table.checkout_latest()
        query = self.table.search()
        if dataset:
            query = query.where(equal_to("dataset", dataset))
        rows = query.limit(max(self.table.count_rows(), 1)).to_list()
        return sorted((self._annotation(r) for r in rows), key=lambda a: a.created_at + a.id)

    def remove(self, annotation_id: str) -> None:
        """Delete one annotation by id."""
        with _LOCK:
            if not any(a.id == annotation_id for a in self.list()):
                raise UserError(f"no annotation with id {annotation_id!r}")
            commit_retrying(self.table, lambda table: table.delete(equal_to("id", annotation_id)))

    @staticmethod
    def _annotation(row: dict) -> Annotation:
        image = Image.open(io.BytesIO(row["image_png"])).convert("RGB")
        mask = Image.open(io.BytesIO(row["mask_png"])).convert("L") if row["mask_png"] else None
        return Annotation(
            row["id"],
            row["dataset"],
            row["category"],
            row["label"],
            row["defect"],
            row["note"],
            row["author"],
            row["created_at"],
            image,
            mask,
            row["model_answer"],
            row["corrected_answer"],
        )


def _lettered(answer: str, distractors: list[str], slot: int) -> tuple[dict[str, str], str]:
    options = distractors[:]
    options.insert(slot % (len(options) + 1), answer)
    letters = "ABCDE"[: len(options)]
    return dict(zip(letters, options, strict=True)), letters[options.index(answer)]


def questions_for(annotation: Annotation, defects: list[str], categories: list[str], index: int) -> list[MMADQuestion]:
    """MMAD questions generated from an annotation's labels (answer slots rotate with `index`)."""
    defective = annotation.label == "defective"
    options, answer = _lettered("Yes." if defective else "No.", ["No." if defective else "Yes."], index)
    questions = [MMADQuestion(Question=ANOMALY_QUESTION, Options=options, Answer=answer, type="Anomaly Detection")]
    others = [c for c in categories if c != annotation.category][:3]
    if others:
        options, answer = _lettered(annotation.category, others, index)
        questions.append(
            MMADQuestion(
                Question="What kind of object or material is shown?",
                Options=options,
                Answer=answer,
                type="Object Classification",
            )
        )
    if defective:
        alternatives = [d for d in defects if d != annotation.defect][:3]
        if alternatives:
            options, answer = _lettered(annotation.defect, alternatives, index)
            questions.append(
                MMADQuestion(
                    Question="There is a defect in the object. What type of defect is it?",
                    Options=options,
                    Answer=answer,
                    type="Defect Classification",
                )
            )
        region = region_of(np.asarray(annotation.mask) > 0) if annotation.mask is not None else None
        if region:
            wrong = [r for r in REGIONS if r != region][index % 6 : index % 6 + 3]
            options, answer = _lettered(region, wrong, index)
            questions.append(
                MMADQuestion(
                    Question="Where is the defect located?", Options=options, Answer=answer, type="Defect Localization"
                )
            )
    return questions
