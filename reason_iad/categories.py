"""Bring your own product: a new category from 5-100 normal images (files or a zip), ready to inspect.

`read_normal_images` reads uploads (image files and zip archives, real photographs and greyscale included) with
the project's safe loader and refuses what is unusable in one message; `create_category` checks the name,
refuses a category that exists, then adds the images as normal exemplars through the pipeline (the one-shot
templates and the visual memory's bank with its calibration, together) and optionally a knowledge entry.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from reason_iad.errors import UserError
from reason_iad.images import load_image

MIN_IMAGES, MAX_IMAGES = 5, 100
MAX_MEMBER_BYTES = 40 * 2**20  # a zip member larger than this is not read (zip bombs, stray videos)
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")


@dataclass(frozen=True)
class NormalImages:
    """Normal images read from uploads, and what was left out (with why)."""

    images: tuple[Image.Image, ...]
    names: tuple[str, ...]
    skipped: tuple[str, ...]


@dataclass(frozen=True)
class NewCategory:
    """A created category: its exemplars, its memory bank, its knowledge entry (if any)."""

    dataset: str
    category: str
    exemplar_ids: tuple[str, ...]
    bank: object | None  # memory.BankInfo
    knowledge_id: str | None
    skipped: tuple[str, ...]


def _zip_members(path: Path) -> Iterator[tuple[str, bytes | None, str]]:
    """(name, bytes or None, why skipped) for each file of a zip archive, each member read only when reached.

    An archive in MVTec AD's layout (`<category>/train/good/...`, as the Annotate tab's MVTec export writes) gives
    only its `train/good` images: the test images and masks are not normal exemplars.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise UserError(f"{path.name} is not a readable zip archive: {err}") from err
    with archive:
        files = [i for i in archive.infolist() if not i.is_dir() and "__MACOSX" not in i.filename]
        normal = mvtec_normals(path.name, [i.filename for i in files])
        left_out = 0
        for info in files:
            name = Path(info.filename).name
            if name.startswith("."):
                continue
            if normal is not None and info.filename not in normal:
                left_out += 1
            elif Path(name).suffix.lower() not in _IMAGE_SUFFIXES:
                yield name, None, "not an image file"
            elif info.file_size > MAX_MEMBER_BYTES:
                yield name, None, f"larger than {MAX_MEMBER_BYTES // 2**20} MiB"
            else:
                yield name, archive.read(info), ""
        if left_out:
            yield f"{left_out} files outside train/good", None, "MVTec layout: test images and masks are not normals"


def mvtec_normals(archive: str, names: Sequence[str]) -> set[str] | None:
    """The `train/good` members of an archive in MVTec AD's layout, or None when it is not laid out so.

    Raises:
        UserError: The archive holds the `train/good` folders of more than one category.
    """
    inside = [name for name in names if "/train/good/" in f"/{name}"]
    roots = {f"/{name}".split("/train/good/")[0] for name in inside}
    if not roots:
        return None
    if len(roots) > 1:
        shown = ", ".join(sorted(r.strip("/").rsplit("/", 1)[-1] or "(top)" for r in roots))
        raise UserError(f"{archive} holds the MVTec folders of {len(roots)} categories ({shown}); upload one at a time")
    return set(inside)


def read_normal_images(sources: Sequence[str | Path]) -> NormalImages:
    """Decode uploaded files and zips; unreadable members are skipped and named.

    More than MAX_IMAGES are refused as soon as one too many is decoded (the rest of the upload is never read).
    """
    images, names, skipped = [], [], []
    for source in sources:
        path = Path(source)
        members = _zip_members(path) if path.suffix.lower() == ".zip" else [(path.name, path, "")]
        for name, payload, why in members:
            if payload is None:
                skipped.append(f"{name} ({why})")
                continue
            try:
                images.append(load_image(payload, name))
                names.append(name)
            except UserError as err:
                skipped.append(f"{name} ({err})")
            if len(images) > MAX_IMAGES:
                raise UserError(f"more than {MAX_IMAGES} images: a category takes at most {MAX_IMAGES} normal images")
    if not images:
        shown = "; ".join(skipped[:3]) if skipped else "no files"
        raise UserError(f"no usable normal image in the upload ({shown})")
    return NormalImages(tuple(images), tuple(names), tuple(skipped))


def check_category_name(dataset: str, category: str, existing: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """The stripped names, or a `UserError` for a bad or taken (dataset, category) (case-insensitive)."""
    dataset, category = dataset.strip(), category.strip()
    for label, value in (("dataset", dataset), ("category", category)):
        if not _NAME.match(value):
            raise UserError(f"the {label} name must be 1-64 letters, digits, spaces, '.', '_' or '-'")
    taken = {(d.lower(), c.lower()) for d, c in existing}
    if (dataset.lower(), category.lower()) in taken:
        raise UserError(f"category {category!r} of {dataset!r} exists already; choose another name")
    return dataset, category


def existing_categories(pipeline) -> list[tuple[str, str]]:
    """(dataset, category) pairs known to the exemplar table (the memory's too) or the knowledge base."""
    pairs = set()
    if pipeline.exemplars is not None:
        pairs |= set(pipeline.exemplars.categories())
    if pipeline.store is not None:
        from reason_iad.knowledge.search import categories

        pairs |= set(categories(pipeline.store))
    return sorted(pairs)


def create_category(
    pipeline,
    dataset: str,
    category: str,
    sources: Sequence[str | Path],
    author: str,
    description: str = "",
    progress: Callable[[float, str], None] | None = None,
) -> NewCategory:
    """Create a category from uploaded normal images (and an optional description of its normal look).

    Nothing is written when the name is taken or bad, or fewer than MIN_IMAGES images are usable.
    """
    report = progress or (lambda fraction, text: None)
    dataset, category = check_category_name(dataset, category, existing_categories(pipeline))
    report(0.05, "reading the images")
    normal = read_normal_images(sources)
    if len(normal.images) < MIN_IMAGES:
        raise UserError(
            f"{len(normal.images)} usable normal images: a category needs at least {MIN_IMAGES}"
            + (f" (skipped: {'; '.join(normal.skipped[:3])})" if normal.skipped else "")
        )
    report(0.15, f"building the memory bank and calibration of {category} from {len(normal.images)} images")
    update = pipeline.add_exemplars(normal.images, dataset, category, author, "bring your own product")
    knowledge_id = None
    if description.strip() and pipeline.store is not None:
        report(0.95, "adding the knowledge entry")
        knowledge_id = _add_normal_entry(pipeline.store, dataset, category, description.strip(), author)
    report(1.0, "done")
    return NewCategory(dataset, category, update.ids, update.bank, knowledge_id, normal.skipped)


def _add_normal_entry(store, dataset: str, category: str, description: str, author: str) -> str:
    from reason_iad.knowledge.entry import entry_id, make_entry

    identifier = entry_id(dataset, category, "good")
    entry = make_entry(
        id=identifier,
        dataset=dataset,
        category=category,
        defect="good",
        title=f"Normal {category}",
        text=description,
        author=author,
    )
    store.add([entry], author=author, summary=f"normal look of the new category {category}")
    return identifier
