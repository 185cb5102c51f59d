"""Annotation exports in standard layouts, each one re-readable as written: MMAD, MVTec AD and COCO.

- `mmad`: MMAD's layout (`mmad.json`, images under `<dataset>/<category>/test/<defect>/`, masks under
  `ground_truth/`), with the category's normal exemplars written as `train/good` templates and listed in every
  record's `similar_templates` / `random_templates`, so that `reason-iad eval --data <export>` runs one-shot with
  its default flags;
- `mvtec`: MVTec AD's folders, `<category>/train/good`, `<category>/test/<defect>`,
  `<category>/ground_truth/<defect>/<name>_mask.png`;
- `coco`: COCO instance segmentation, `annotations.json` (one instance per defective image's mask: uncompressed
  RLE in column-major order, bbox, area; categories = defect types) and `images/`.

`EXPORT_FORMATS` is the one table of formats (name -> writer); every writer builds in a staging folder and swaps
it in by renames, so an interrupted export never leaves a half-written folder in place of the previous one.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from reason_iad.annotations import Annotation, questions_for
from reason_iad.errors import UserError
from reason_iad.mmad import MMADRecord, dump_mmad

Templates = Mapping[tuple[str, str], Sequence[Image.Image]]
"""(dataset, category) -> the category's normal exemplars (the one-shot templates)."""


def _staged(out_dir: str | Path, force: bool, write: Callable[[Path], None]) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; choose a folder to export into")
    if out.exists() and any(out.iterdir()) and not force:
        raise UserError(f"{out} is not empty; choose another folder or allow overwriting")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    previous = staging.with_name(f"{staging.name}-previous")
    try:
        write(staging)
        if out.exists():
            out.rename(previous)
        staging.rename(out)
    except BaseException:
        if previous.exists() and not out.exists():
            previous.rename(out)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(previous, ignore_errors=True)
    return out


def _checked(annotations: Sequence[Annotation]) -> list[Annotation]:
    if not annotations:
        raise UserError("there are no annotations to export")
    return list(annotations)


def _by_category(annotations: Sequence[Annotation]) -> dict[tuple[str, str], list[Annotation]]:
    ordered = sorted(annotations, key=lambda a: (a.dataset, a.category))
    return {k: list(g) for k, g in itertools.groupby(ordered, key=lambda a: (a.dataset, a.category))}


def export_mmad(
    annotations: Sequence[Annotation], out_dir: str | Path, templates: Templates | None = None, force: bool = False
) -> int:
    """Write annotations as an MMAD-format dataset; returns the number of query images."""
    annotations = _checked(annotations)
    _staged(out_dir, force, lambda root: _write_mmad(annotations, templates or {}, root))
    return len(annotations)


def _write_mmad(annotations: list[Annotation], templates: Templates, root: Path) -> None:
    groups = _by_category(annotations)
    categories = sorted({c for _, c in groups})
    records, counter = {}, itertools.count()
    for (dataset, category), members in groups.items():
        base = f"{dataset}/{category}"
        train = [f"{base}/train/good/{i:04d}.png" for i in range(len(templates.get((dataset, category), ())))]
        for key, image in zip(train, templates.get((dataset, category), ()), strict=True):
            _save(image, root / key)
        defects = sorted({a.defect for a in members if a.label == "defective"})
        keys = [(next(counter), a) for a in members]
        keys = [(i, a, f"{base}/test/{'good' if a.label == 'normal' else a.defect}/{i:04d}.png") for i, a in keys]
        normal_keys = [key for _, a, key in keys if a.label == "normal"]
        for index, a, key in keys:
            _save(a.image, root / key)
            mask_path = ""
            if a.mask is not None:
                mask_path = f"{base}/ground_truth/{a.defect}/{index:04d}_mask.png"
                _save(a.mask, root / mask_path)
            listed = train or [k for k in normal_keys if k != key]  # no exemplars: the other normal images
            records[key] = MMADRecord(
                conversation=questions_for(a, defects, categories, index),
                mask_path=mask_path,
                similar_templates=listed,
                random_templates=listed,
            )
    dump_mmad(records, root / "mmad.json")


def export_mvtec(
    annotations: Sequence[Annotation], out_dir: str | Path, templates: Templates | None = None, force: bool = False
) -> int:
    """Write annotations in MVTec AD's folder layout (one folder per category); returns the number of images."""
    annotations = _checked(annotations)
    _staged(out_dir, force, lambda root: _write_mvtec(annotations, templates or {}, root))
    return len(annotations)


def _write_mvtec(annotations: list[Annotation], templates: Templates, root: Path) -> None:
    for (dataset, category), members in _by_category(annotations).items():
        folder = root / category
        for i, image in enumerate(templates.get((dataset, category), ())):
            _save(image, folder / "train" / "good" / f"{i:03d}.png")
        counts: dict[str, int] = {}
        for a in members:
            defect = "good" if a.label == "normal" else a.defect
            name = f"{counts.setdefault(defect, 0):03d}"
            counts[defect] += 1
            _save(a.image, folder / "test" / defect / f"{name}.png")
            if a.mask is not None:
                _save(a.mask, folder / "ground_truth" / defect / f"{name}_mask.png")


def rle_encode(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE of a binary mask [H, W]: run lengths in column-major order, starting with zeros."""
    flat = np.asarray(mask, dtype=bool).flatten(order="F")
    changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    edges = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(edges).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(c) for c in counts]}


def export_coco(
    annotations: Sequence[Annotation], out_dir: str | Path, templates: Templates | None = None, force: bool = False
) -> int:
    """Write COCO instance-segmentation JSON (one instance per defect mask) and the images; returns the images."""
    annotations = _checked(annotations)
    _staged(out_dir, force, lambda root: _write_coco(annotations, root))
    return len(annotations)


def _write_coco(annotations: list[Annotation], root: Path) -> None:
    defects = sorted({a.defect for a in annotations if a.label == "defective"})
    category_ids = {d: i + 1 for i, d in enumerate(defects)}
    images, instances = [], []
    for index, a in enumerate(annotations, start=1):
        name = f"{index:05d}.png"
        _save(a.image, root / "images" / name)
        width, height = a.image.size
        images.append(
            {
                "id": index,
                "file_name": f"images/{name}",
                "width": width,
                "height": height,
                "dataset": a.dataset,
                "category": a.category,
                "label": a.label,
            }
        )
        if a.mask is None:
            continue
        mask = np.asarray(a.mask) > 0
        ys, xs = np.nonzero(mask)
        bbox = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
        instances.append(
            {
                "id": len(instances) + 1,
                "image_id": index,
                "category_id": category_ids[a.defect],
                "segmentation": rle_encode(mask),
                "area": int(mask.sum()),
                "bbox": bbox,
                "iscrowd": 1,
            }
        )
    payload = {
        "info": {"description": "Reason-IAD Studio annotations", "version": "1"},
        "images": images,
        "annotations": instances,
        "categories": [{"id": i, "name": d, "supercategory": "defect"} for d, i in category_ids.items()],
    }
    (root / "annotations.json").write_text(json.dumps(payload), encoding="utf-8")


def _save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


@dataclass(frozen=True)
class ExportFormat:
    """One export format: its name in the UI and the CLI, what it writes, and its writer."""

    name: str
    label: str
    writer: Callable[..., int]


EXPORT_FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("mmad", "MMAD (mmad.json, runs with reason-iad eval)", export_mmad),
        ExportFormat("mvtec", "MVTec AD folders (train/good, test/<defect>, ground_truth)", export_mvtec),
        ExportFormat("coco", "COCO instance segmentation (annotations.json, RLE masks)", export_coco),
    )
}


def export_annotations(
    fmt: str,
    annotations: Sequence[Annotation],
    out_dir: str | Path,
    templates: Templates | None = None,
    force: bool = False,
) -> int:
    """Export in the named format (see `EXPORT_FORMATS`); an unknown name is refused."""
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    return EXPORT_FORMATS[fmt].writer(annotations, out_dir, templates=templates, force=force)
