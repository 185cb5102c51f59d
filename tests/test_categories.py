"""Bring your own product: a category from real photographs (scikit-image's CC0 textures), then inspected."""

import zipfile

import numpy as np
import pytest
from PIL import Image, ImageDraw

from knowledge_helpers import make_store
from reason_iad.categories import MIN_IMAGES, create_category, read_normal_images
from reason_iad.config import AppConfig, MemoryConfig, ReasoningConfig
from reason_iad.errors import UserError
from reason_iad.memory.exemplars import ExemplarStore
from reason_iad.pipeline import Pipeline


def _crops(texture: str, count: int, size: int = 128) -> list[Image.Image]:
    import skimage.data

    array = getattr(skimage.data, texture)()  # greyscale 512x512, CC0
    step = (array.shape[0] - size) // 3
    spots = [(r * step, c * step) for r in range(4) for c in range(4)][:count]
    return [Image.fromarray(array[y : y + size, x : x + size]) for y, x in spots]  # mode L: greyscale photos


def _defective(image: Image.Image) -> Image.Image:
    damaged = image.convert("RGB")
    ImageDraw.Draw(damaged).ellipse((40, 50, 70, 80), fill=(250, 250, 250))  # a pasted bright blob
    return damaged


@pytest.fixture
def pipeline(tiny_backends, tmp_path):
    from reason_iad.memory import open_memory

    config = AppConfig(reasoning=ReasoningConfig(mode="plain", evidence="text"))
    exemplars = ExemplarStore(tmp_path / "kb")  # one table for the templates and the memory's banks
    memory = open_memory(tmp_path / "kb", MemoryConfig(enabled=True, views_per_exemplar=2), exemplars=exemplars)
    return Pipeline(tiny_backends["qwen2_5_vl"], config, make_store(tmp_path / "kb"), exemplars, None, memory)


def _files(tmp_path, images, prefix="normal"):
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"{prefix}{i}.png")
        image.save(paths[-1])
    return paths


@pytest.mark.slow
def test_a_category_from_photographs_and_a_zip_flags_a_pasted_defect(pipeline, tmp_path):
    crops = _crops("brick", 8)
    files = _files(tmp_path, crops[:4])
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for i, crop in enumerate(crops[4:7]):
            crop.save(tmp_path / f"z{i}.png")
            out.write(tmp_path / f"z{i}.png", f"photos/z{i}.png")
        out.writestr("notes.txt", "not an image")
    created = create_category(
        pipeline, "Mine", "brick wall", [*files, archive], "ana", description="Regular red bricks with grey mortar."
    )
    assert len(created.exemplar_ids) == 7 and created.skipped == ("notes.txt (not an image file)",)
    assert created.bank is not None and len(created.bank.exemplar_ids) == 7
    assert created.knowledge_id == "mine/brick wall/good"
    assert len(pipeline.exemplars.list(category="brick wall")) == 7
    normal = pipeline.anomaly(crops[7].convert("RGB"), "brick wall", "Mine")
    damaged = pipeline.anomaly(_defective(crops[7]), "brick wall", "Mine")
    assert damaged.score > normal.score and damaged.verdict != "normal"
    inspection = pipeline.inspect(_defective(crops[7]), category="brick wall", dataset="Mine")
    assert inspection.anomaly is not None and inspection.anomaly.verdict == damaged.verdict


@pytest.mark.slow
def test_refusals_write_nothing(pipeline, tmp_path):
    files = _files(tmp_path, _crops("gravel", 6))
    with pytest.raises(UserError, match=f"at least {MIN_IMAGES}"):
        create_category(pipeline, "Mine", "gravel", files[:3], "ana")
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as out:
        out.writestr("readme.md", "nothing here")
    with pytest.raises(UserError, match="no usable normal image"):
        create_category(pipeline, "Mine", "gravel", [empty], "ana")
    (tmp_path / "fake.png").write_bytes(b"%PDF-1.4 not an image")
    with pytest.raises(UserError, match="at least"):
        create_category(pipeline, "Mine", "gravel", [*files[:4], tmp_path / "fake.png"], "ana")
    with pytest.raises(UserError, match="name must be"):
        create_category(pipeline, "Mine", "../etc", files, "ana")
    assert pipeline.exemplars.list(category="gravel") == [] and ("Mine", "gravel") not in pipeline.memory.categories()
    create_category(pipeline, "Mine", "gravel", files, "ana")
    with pytest.raises(UserError, match="exists already"):
        create_category(pipeline, "mine", "Gravel", files, "ana")


def test_uploads_keep_greyscale_photos_usable_and_name_what_was_skipped(tmp_path):
    files = _files(tmp_path, _crops("grass", 5))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    read = read_normal_images([*files, tmp_path / "broken.png"])
    assert len(read.images) == 5 and all(i.mode == "RGB" for i in read.images)
    assert len(read.skipped) == 1 and read.skipped[0].startswith("broken.png")
    assert np.asarray(read.images[0]).std() > 5  # a real photograph, not a flat stand-in


def test_more_than_the_maximum_is_refused_without_reading_the_rest(tmp_path):
    from reason_iad.categories import MAX_IMAGES

    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for i in range(MAX_IMAGES + 5):
            image = tmp_path / "one.png"
            Image.new("L", (24, 24), i % 250).save(image)
            out.write(image, f"n{i}.png")
    with pytest.raises(UserError, match=f"more than {MAX_IMAGES} images"):
        read_normal_images([archive])
