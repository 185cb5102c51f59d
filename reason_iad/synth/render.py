"""Render one SynthIAD sample: the clean image, the same image with a defect painted in, and its exact mask.

`sample_rng(seed, category, index, kind)` gives every image its own generator, independent of generation
order; `render_sample` draws the clean scene first and then the defect from the same generator.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from reason_iad.errors import UserError
from reason_iad.synth import object_defects as od
from reason_iad.synth import texture_defects as td
from reason_iad.synth.catalog import CATEGORIES, NORMAL
from reason_iad.synth.objects import render_bottle, render_metal_nut, render_pill, render_screw
from reason_iad.synth.scene import Paint, Scene, finish, to_uint8
from reason_iad.synth.shapes import region_of
from reason_iad.synth.textures import render_carpet, render_grid, render_tile, render_wood

SampleKind = Literal["template", "normal", "defect"]
KIND_CODES: dict[str, int] = {"template": 0, "normal": 1, "defect": 2, "gallery": 3}
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 32, 4096
MIN_DEFECT_AREA = 0.0015  # fraction of the image
MIN_DEFECT_CONTRAST = 20.0  # mean absolute change inside the mask, in 0..255 units
MAX_PAINT_TRIES = 8

RENDERERS: dict[str, Callable[[np.random.Generator, int], Scene]] = {
    "carpet": render_carpet,
    "wood": render_wood,
    "tile": render_tile,
    "grid": render_grid,
    "bottle": render_bottle,
    "metal_nut": render_metal_nut,
    "pill": render_pill,
    "screw": render_screw,
}

PAINTERS: dict[tuple[str, str], Callable[[np.random.Generator, Scene], Paint]] = {
    ("carpet", "hole"): td.carpet_hole,
    ("carpet", "cut"): td.carpet_cut,
    ("carpet", "color"): td.carpet_color,
    ("carpet", "thread"): td.carpet_thread,
    ("wood", "scratch"): td.wood_scratch,
    ("wood", "hole"): td.wood_hole,
    ("wood", "liquid"): td.wood_liquid,
    ("wood", "color"): td.wood_color,
    ("tile", "crack"): td.tile_crack,
    ("tile", "oil"): td.tile_oil,
    ("tile", "gray_stroke"): td.tile_gray_stroke,
    ("grid", "bent"): td.grid_bent,
    ("grid", "broken"): td.grid_broken,
    ("grid", "metal_contamination"): td.grid_metal_contamination,
    ("bottle", "broken_large"): od.bottle_broken_large,
    ("bottle", "broken_small"): od.bottle_broken_small,
    ("bottle", "contamination"): od.bottle_contamination,
    ("metal_nut", "scratch"): od.metal_nut_scratch,
    ("metal_nut", "bent"): od.metal_nut_bent,
    ("metal_nut", "color"): od.metal_nut_color,
    ("pill", "crack"): od.pill_crack,
    ("pill", "contamination"): od.pill_contamination,
    ("pill", "color"): od.pill_color,
    ("screw", "scratch_head"): od.screw_scratch_head,
    ("screw", "thread_side"): od.screw_thread_side,
    ("screw", "manipulated_front"): od.screw_manipulated_front,
}


@dataclass(frozen=True)
class SampleFacts:
    """The ground truth of a rendered image that questions are built from (small and picklable).

    Attributes:
        category: Category name.
        defect: Defect type, or None for a normal image.
        region: 3x3 location of the mask centroid, None when normal.
        structure: Rendered structure variant key.
        detail: Rendered colour/finish variant key.
        look: Rendered look of the defect, None when normal.
    """

    category: str
    defect: str | None
    region: str | None
    structure: str
    detail: str
    look: str | None

    @property
    def is_normal(self) -> bool:
        """True when no defect was painted."""
        return self.defect is None

    @property
    def description(self) -> str | None:
        """The catalog description of this defect as rendered, None when normal."""
        if self.defect is None:
            return None
        return CATEGORIES[self.category].defect(self.defect).description(self.look)


@dataclass(frozen=True)
class RenderedSample:
    """One rendered image with its clean twin and ground truth.

    Attributes:
        category: Category name.
        defect: Defect type, or None for a normal image.
        clean: The image before the defect was painted (PIL RGB).
        image: The final image (PIL RGB); equals `clean` outside the mask.
        mask: Defect mask (PIL L, 0 or 255); all zero for a normal image.
        region: 3x3 location of the mask centroid ("top left" ... "bottom right"), None when normal.
        structure: Rendered structure variant key (see the catalog).
        detail: Rendered colour/finish variant key.
        look: Rendered look of the defect (a key of the defect type's `looks`), None when normal.
    """

    category: str
    defect: str | None
    clean: Image.Image
    image: Image.Image
    mask: Image.Image
    region: str | None
    structure: str
    detail: str
    look: str | None

    @property
    def facts(self) -> SampleFacts:
        """The ground truth without the images."""
        return SampleFacts(self.category, self.defect, self.region, self.structure, self.detail, self.look)

    @property
    def is_normal(self) -> bool:
        """True when no defect was painted."""
        return self.defect is None


def sample_rng(seed: int, category: str, index: int, kind: str) -> np.random.Generator:
    """The generator of one image, derived from (seed, category, index, kind) only.

    Args:
        seed: Dataset seed (non-negative).
        category: Category name (hashed with CRC-32, stable across runs and platforms).
        index: Image index within its category and kind.
        kind: "template", "normal", "defect" or "gallery".

    Returns:
        A fresh `numpy.random.Generator`.
    """
    key = (zlib.crc32(category.encode("utf-8")), KIND_CODES[kind], int(index))
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=key))


def _check_request(category: str, defect: str | None, image_size: int) -> str | None:
    """Validate arguments of `render_sample`; return the defect key (None for normal)."""
    if category not in CATEGORIES:
        raise UserError(f"unknown category {category!r}; choose from {', '.join(CATEGORIES)}")
    if not MIN_IMAGE_SIZE <= int(image_size) <= MAX_IMAGE_SIZE:
        raise UserError(f"image size must be between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE} px, got {image_size}")
    if defect is None or defect == NORMAL:
        return None
    if (category, defect) not in PAINTERS:
        known = ", ".join(CATEGORIES[category].defect_names)
        raise UserError(f"unknown defect {defect!r} for {category}; choose from {known} or {NORMAL}")
    return defect


def _paint_visible(
    rng: np.random.Generator, scene: Scene, painter: Callable, clean: np.ndarray
) -> tuple[np.ndarray, np.ndarray, str]:
    """Paint until the defect is large and contrasted enough (rarely needs a second try)."""
    for _ in range(MAX_PAINT_TRIES):
        paint = painter(rng, scene)
        painted = to_uint8(finish(scene, paint.base))
        image = np.where(paint.mask[..., None], painted, clean)
        area = float(paint.mask.mean())
        change = np.abs(image.astype(np.int16) - clean.astype(np.int16)).max(axis=-1)
        if area >= MIN_DEFECT_AREA and float(change[paint.mask].mean()) >= MIN_DEFECT_CONTRAST:
            return image, paint.mask, paint.traits.get("look", "")
    raise RuntimeError(f"could not paint a visible {painter.__name__} after {MAX_PAINT_TRIES} tries")


def render_sample(
    category: str,
    defect: str | None,
    rng_or_seed: np.random.Generator | np.random.SeedSequence | int,
    image_size: int = 256,
) -> RenderedSample:
    """Render one image of a category, normal (`defect` None or "good") or with the given defect.

    Args:
        category: Category name (see `CATEGORIES`).
        defect: Defect type of that category, or None / "good" for a normal image.
        rng_or_seed: A generator (advanced in place), a SeedSequence or an integer seed.
        image_size: Side of the square image in pixels.

    Returns:
        The rendered sample; `image` equals `clean` outside `mask`.

    Raises:
        UserError: Unknown category or defect, or an image size out of range.
    """
    defect = _check_request(category, defect, image_size)
    rng = rng_or_seed if isinstance(rng_or_seed, np.random.Generator) else np.random.default_rng(rng_or_seed)
    scene = RENDERERS[category](rng, int(image_size))
    clean = to_uint8(finish(scene, scene.base))
    image, mask, look = clean, np.zeros(clean.shape[:2], dtype=bool), None
    if defect is not None:
        image, mask, look = _paint_visible(rng, scene, PAINTERS[(category, defect)], clean)
    return RenderedSample(
        category=category,
        defect=defect,
        clean=Image.fromarray(clean),
        image=Image.fromarray(image),
        mask=Image.fromarray((mask * 255).astype(np.uint8)),
        region=region_of(mask),
        structure=scene.structure,
        detail=scene.detail,
        look=look or None,
    )
