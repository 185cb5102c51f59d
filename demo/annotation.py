"""The Annotate tab's logic: store a labelled image with its painted defect mask, export everything as MMAD."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from demo.handlers import StudioHandlers, split_category
from reason_iad.errors import UserError


def editor_image_and_mask(value) -> tuple[Image.Image | None, object]:
    """(image, mask array or None) from a `gr.ImageEditor` value: the background and every painted layer."""
    if value is None:
        return None, None
    background = value.get("background") if isinstance(value, dict) else value
    if background is None:
        return None, None
    layers = value.get("layers") or [] if isinstance(value, dict) else []
    mask = None
    for layer in layers:
        alpha = np.asarray(layer.convert("RGBA"))[..., 3] > 0
        mask = alpha if mask is None else mask | alpha
    return background, mask


PREFILLS: tuple[str, ...] = ("anomaly map", "kept patches", "nothing")
MASK_RGBA = (255, 0, 0, 160)  # the brush's red, half transparent: the defect stays visible under the mask


def prefilled_mask(run, source: str) -> np.ndarray | None:
    """A first mask for the last inspection (None for "nothing" or when the run lacks that evidence).

    "anomaly map": where the calibrated map is "suspicious" or worse (>= 0.5); "kept patches": their boxes' union.
    """
    height, width = run.query.size[1], run.query.size[0]
    if source == "anomaly map" and run.anomaly is not None:
        mask = np.asarray(run.anomaly.anomaly_map) >= 0.5
        return mask if mask.any() else None
    if source == "kept patches" and run.inspection is not None and run.inspection.injected:
        mask = np.zeros((height, width), dtype=bool)
        for patch in run.inspection.injected:
            x0, y0, x1, y1 = (int(round(v)) for v in patch.box)
            mask[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)] = True
        return mask
    return None


def inspected_category(run) -> tuple[str, str]:
    """(dataset, category) of the last inspection: the visual memory's bank, else the form's choice ("" unknown)."""
    if run.anomaly is not None:
        return run.anomaly.dataset, run.anomaly.category
    dataset, category = split_category(run.asked[0] if run.asked else None)
    return dataset or "", category or ""


def correction_editor(run, source: str) -> dict:
    """The editor's value for correcting the last inspection: its image with the pre-filled mask as a layer."""
    if run is None:
        raise UserError("inspect an image first: the correction starts from the last inspection")
    if source not in PREFILLS:
        raise UserError(f"pre-fill the mask from one of {', '.join(PREFILLS)}")
    image = run.query.convert("RGB")
    mask = prefilled_mask(run, source)
    layers = []
    if mask is not None:
        layer = np.zeros((*mask.shape, 4), dtype=np.uint8)
        layer[mask] = MASK_RGBA
        layers.append(Image.fromarray(layer, "RGBA"))
    composite = image.copy()
    for layer in layers:
        composite.paste(layer, (0, 0), layer)
    return {"background": image, "layers": layers, "composite": composite}


def is_blank(image: Image.Image) -> bool:
    """True for an image of one flat colour (the editor's empty canvas is white), never a part worth annotating."""
    low, high = zip(*image.convert("RGB").getextrema(), strict=True)
    return low == high


class AnnotationHandlers:
    """Annotation actions (the studio's Annotate tab)."""

    def __init__(self, studio: StudioHandlers) -> None:
        self.studio = studio
        self.pipeline = studio.pipeline

    def save_annotation(
        self,
        editor_value,
        label: str,
        dataset: str,
        category: str,
        defect: str,
        note: str,
        model_answer: str,
        corrected: str,
        as_template: bool,
        username: str | None,
    ) -> str:
        """Store an annotation (and optionally a normal template); returns a status line.

        Everything is checked before anything is written: there must be an image (the editor's blank canvas, one
        flat colour, is not one), a defective image needs its defect painted, only normal images become templates.
        """
        author = self.studio.curator(username)
        image, mask = editor_image_and_mask(editor_value)
        if image is None or is_blank(image):
            raise UserError("open an image to annotate first (the editor's blank canvas is not an image)")
        if self.pipeline.annotations is None:
            raise UserError("no annotation store is loaded")
        if label == "defective" and (mask is None or not np.asarray(mask).any()):
            raise UserError("paint the defect on the image before saving it as defective (or label it normal)")
        if as_template and label != "normal":
            raise UserError("only normal images can become one-shot templates")
        annotation_id = self.pipeline.annotations.add(
            image,
            label,
            dataset or "",
            category or "",
            author,
            defect or "",
            note or "",
            mask,
            model_answer or "",
            corrected or "",
        )
        status = f"Saved annotation {annotation_id}."
        if as_template:
            update = self.pipeline.add_exemplars([image], dataset, category, author, note or "from an annotation")
            status += f" Added as normal template {update.ids[0]}."
            bank = update.bank
            if bank is not None:
                status += (
                    f" Visual memory bank of {category}: {len(bank.exemplar_ids)} exemplars, "
                    f"{bank.num_patches} patches (version {bank.version})."
                )
        return status

    def annotation_rows(self) -> list[list]:
        """Table rows of all annotations."""
        if self.pipeline.annotations is None:
            return []
        return [
            [a.id, a.dataset, a.category, a.label, a.defect, a.author, a.created_at, "yes" if a.mask else ""]
            for a in self.pipeline.annotations.list()
        ]

    def export_annotations(self, fmt: str = "mmad", username: str | None = None) -> str:
        """Export every annotation in `fmt` (MMAD, MVTec AD or COCO; see `reason_iad.exports`) as a zip (curators only).

        The MMAD and MVTec exports carry each category's normal exemplars as its `train/good` templates.
        """
        self.studio.curator(username, "export the annotations")
        from reason_iad.exports import export_annotations

        annotations = self.pipeline.annotations.list() if self.pipeline.annotations is not None else []
        templates = {}
        if self.pipeline.exemplars is not None:
            for dataset, category in {(a.dataset, a.category) for a in annotations}:
                found = self.pipeline.exemplars.list(category=category, dataset=dataset)
                templates[(dataset, category)] = [e.image for e in found]
        folder = Path(tempfile.mkdtemp(prefix="reason-iad-annotations-"))
        export_annotations(fmt, annotations, folder / "dataset", templates=templates)
        return shutil.make_archive(str(folder / f"annotations-{fmt}"), "zip", folder / "dataset")
