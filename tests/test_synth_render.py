"""Rendering of single SynthIAD samples: masks are exact, defects are visible, renders are deterministic."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from reason_iad.errors import UserError
from reason_iad.synth import CATEGORIES, render_sample, sample_rng
from reason_iad.synth.render import PAINTERS, RENDERERS
from reason_iad.synth.shapes import REGIONS, region_of

ALL_DEFECTS = [(c.name, d) for c in CATEGORIES.values() for d in c.defect_names]


def _arrays(sample):
    return (
        np.asarray(sample.clean).astype(np.int16),
        np.asarray(sample.image).astype(np.int16),
        np.asarray(sample.mask) > 0,
    )


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_catalog_renderers_and_painters_cover_each_other():
    assert set(RENDERERS) == set(CATEGORIES)
    assert set(PAINTERS) == set(ALL_DEFECTS)
    assert len(CATEGORIES) == 8
    assert {c.kind for c in CATEGORIES.values()} == {"texture", "object"}


@pytest.mark.parametrize(("category", "defect"), ALL_DEFECTS)
def test_defect_changes_pixels_only_inside_its_mask(category, defect):
    for index in range(2):
        sample = render_sample(category, defect, sample_rng(11, category, index, "defect"), 64)
        clean, image, mask = _arrays(sample)
        change = np.abs(image - clean).max(axis=-1)
        assert mask.any(), "a defective image needs a non-empty mask"
        assert not change[~mask].any(), "pixels outside the mask must equal the clean render"
        assert change[mask].mean() >= 20, "the defect must differ clearly from the clean render inside the mask"
        assert sample.defect == defect
        assert sample.region == region_of(mask)
        assert sample.region in REGIONS


@pytest.mark.parametrize("category", list(CATEGORIES))
def test_normal_images_have_empty_masks_and_equal_their_clean_render(category):
    sample = render_sample(category, None, sample_rng(5, category, 0, "normal"), 64)
    clean, image, mask = _arrays(sample)
    assert not mask.any()
    assert np.array_equal(clean, image)
    assert sample.region is None and sample.defect is None and sample.is_normal
    assert render_sample(category, "good", sample_rng(5, category, 0, "normal"), 64).image.tobytes() == (
        sample.image.tobytes()
    )


def test_images_have_the_promised_modes_and_sizes():
    sample = render_sample("screw", "thread_side", 3, 96)
    assert sample.clean.mode == "RGB" and sample.image.mode == "RGB" and sample.mask.mode == "L"
    assert sample.image.size == sample.mask.size == (96, 96)
    assert set(np.unique(np.asarray(sample.mask)).tolist()) <= {0, 255}


def test_same_seed_gives_identical_png_bytes_and_another_seed_differs():
    first = render_sample("wood", "liquid", 42, 64)
    again = render_sample("wood", "liquid", 42, 64)
    other = render_sample("wood", "liquid", 43, 64)
    assert _png(first.image) == _png(again.image)
    assert _png(first.mask) == _png(again.mask)
    assert _png(first.image) != _png(other.image)


def test_sample_rng_depends_only_on_its_key():
    draw = sample_rng(1, "tile", 7, "defect").random(4)
    sample_rng(1, "tile", 3, "defect").random(100)  # other images drawn in between change nothing
    assert np.array_equal(draw, sample_rng(1, "tile", 7, "defect").random(4))
    for other in (
        sample_rng(2, "tile", 7, "defect"),
        sample_rng(1, "grid", 7, "defect"),
        sample_rng(1, "tile", 7, "normal"),
    ):
        assert not np.array_equal(draw, other.random(4))


def test_normal_images_vary():
    images = [np.asarray(render_sample("pill", None, sample_rng(0, "pill", i, "normal"), 64).image) for i in range(3)]
    assert not np.array_equal(images[0], images[1]) and not np.array_equal(images[1], images[2])


@pytest.mark.parametrize(("category", "defect"), [("wood", "scratch"), ("tile", "crack"), ("pill", "crack")])
def test_line_defects_survive_downscaling_to_112_px(category, defect):
    sample = render_sample(category, defect, sample_rng(0, category, 0, "defect"), 256)
    small = [
        np.asarray(im.resize((112, 112), Image.Resampling.BILINEAR)).astype(np.int16)
        for im in (sample.clean, sample.image)
    ]
    mask = np.asarray(sample.mask.resize((112, 112), Image.Resampling.BILINEAR)) > 127
    assert mask.any()
    assert np.abs(small[1] - small[0]).max(axis=-1)[mask].mean() >= 20


def test_region_of_names_the_centroid_cell():
    mask = np.zeros((90, 90), dtype=bool)
    mask[2:10, 80:88] = True
    assert region_of(mask) == "top right"
    mask[:] = False
    mask[40:50, 40:50] = True
    assert region_of(mask) == "center"
    assert region_of(np.zeros((9, 9), dtype=bool)) is None


@pytest.mark.parametrize(
    ("category", "defect", "size"),
    [("plastic", None, 64), ("wood", "crack", 64), ("wood", None, 8), ("wood", None, 100000)],
)
def test_bad_requests_raise_user_error(category, defect, size):
    with pytest.raises(UserError):
        render_sample(category, defect, 0, size)


def test_every_defect_has_a_description_for_each_rendered_look():
    for category in CATEGORIES.values():
        for defect in category.defects:
            texts = [text for _, text in defect.looks]
            assert texts and all(t.strip() for t in texts)
            assert defect.description("no-such-look") == texts[0]
