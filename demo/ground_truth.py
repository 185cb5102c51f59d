"""Ground truth of the images the studio knows: gallery examples and annotated images, found by their pixels.

An inspected image is matched by a digest of its decoded pixels (after the project's loader), so a gallery
example or an annotated image is recognised however it reached the studio (gallery click, upload, API call).
The overlap rule is the evaluation harness's (`reason_iad.eval.grounding.MaskCounter`): a box overlaps the mask
when it covers at least one mask pixel; a box that only touches the mask's edge does not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from demo.gallery import GalleryItem
from reason_iad.errors import UserError
from reason_iad.eval.grounding import MaskCounter
from reason_iad.eval.masks import MASK_THRESHOLD, load_mask
from reason_iad.images import load_image


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """What is known to be in an inspected image.

    Attributes:
        source: Where the truth comes from, e.g. `gallery example wood/scratch_1.png` or `annotation <id>`.
        defective: Whether the image shows a defect.
        mask: bool [H, W] at the inspected image's size, True on the defect; None when no mask is known (a normal
            image, or a defective one annotated without painting the defect).
    """

    source: str
    defective: bool
    mask: np.ndarray | None


def pixel_digest(image: Image.Image) -> str:
    """A digest of an image's size, mode and pixels (two images with the same digest look the same)."""
    header = f"{image.size[0]}x{image.size[1]}:{image.mode}:".encode()
    return hashlib.blake2b(header + image.tobytes(), digest_size=16).hexdigest()


def patches_on_defect(mask: np.ndarray, boxes: Sequence[Sequence[float]]) -> list[bool]:
    """For each pixel box (x0, y0, x1, y1), whether it overlaps the mask; all False for an empty mask."""
    counter = MaskCounter(mask)
    return [counter.overlaps(box) for box in boxes]


class GroundTruthIndex:
    """Finds the ground truth of an image among the gallery's examples (indexed once) and the annotations."""

    def __init__(self, gallery: Sequence[GalleryItem]) -> None:
        self._gallery: dict[str, GalleryItem] = {}
        for item in gallery:
            try:
                self._gallery[pixel_digest(load_image(item.image, "gallery example"))] = item
            except UserError:  # a broken example is simply not recognised
                continue

    def lookup(self, image: Image.Image, annotations=None) -> GroundTruth | None:
        """The truth of `image` (a normalised RGB image), or None when it is neither an example nor annotated.

        Args:
            image: The inspected image, as the project's loader returned it.
            annotations: The `AnnotationStore` to search as well (None: the gallery only).
        """
        digest = pixel_digest(image)
        item = self._gallery.get(digest)
        if item is not None:
            mask = load_mask(item.mask, image.size) if item.mask is not None else None
            name = f"gallery example {item.image.parent.name}/{item.image.name}"
            return GroundTruth(name, item.defect != "good", mask)
        for annotation in annotations.list() if annotations is not None else ():
            if pixel_digest(annotation.image) == digest:
                mask = _annotation_mask(annotation.mask, image.size)
                return GroundTruth(f"annotation {annotation.id}", annotation.label == "defective", mask)
        return None


def _annotation_mask(mask: Image.Image | None, size: tuple[int, int]) -> np.ndarray | None:
    if mask is None:
        return None
    grey = mask.convert("L")
    if grey.size != size:
        grey = grey.resize(size, Image.Resampling.NEAREST)
    return np.asarray(grey) > MASK_THRESHOLD
