"""Curating the visual memory: banks per category in LanceDB, versioned updates, refused and normalised exemplars."""

import io

import numpy as np
import pytest
from PIL import Image

from reason_iad.config import MemoryConfig
from reason_iad.errors import UserError
from reason_iad.memory.backbone import EfficientNetLiteBackbone
from reason_iad.memory.detector import VisualMemory
from reason_iad.memory.exemplars import NewExemplar, exemplar_id

CONFIG = MemoryConfig(image_size=64, views_per_exemplar=2, coreset_min_patches=100, coreset_ratio=0.5)


@pytest.fixture(scope="module")
def backbone():
    return EfficientNetLiteBackbone(image_size=64)


def texture(seed: int, size: int = 64) -> Image.Image:
    rng = np.random.default_rng(seed)
    values = 120 + 25 * rng.standard_normal((size, size, 3))
    return Image.fromarray(values.clip(0, 255).astype(np.uint8))


def png(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **kwargs)
    return buffer.getvalue()


def test_adding_and_removing_exemplars_updates_the_bank_as_new_versions(tmp_path, backbone):
    memory = VisualMemory(tmp_path / "db", CONFIG, backbone)
    start = memory.versions()[-1]
    info = memory.add_exemplars("SynthIAD", "tile", [texture(0), texture(1)], labels=["a.png", "b.png"])
    assert len(info.exemplar_ids) == 2 and info.version > start
    assert info.source_patches == 2 * 2 * 64 and info.num_patches == 128  # 2 views of 8x8 patches, then 50%
    assert info.calibration is not None and info.calibration.num_scores == 2
    added = memory.add_exemplars("SynthIAD", "tile", [texture(2)])
    assert added.version > info.version and len(added.exemplar_ids) == 3
    assert added.num_patches == 128 + 64  # incremental: half of the new exemplar's 128 patches joined the coreset
    removed = memory.remove_exemplars("SynthIAD", "tile", [info.exemplar_ids[0]])
    assert removed.version > added.version and info.exemplar_ids[0] not in removed.exemplar_ids
    assert removed.num_patches == 128  # rebuilt from the two that are left
    assert memory.versions() == sorted(memory.versions()) and len(memory.versions()) >= 4
    labels = {e.label for e in memory.exemplars("SynthIAD", "tile")}
    assert len(labels) == 2 and labels <= {"a.png", "b.png", "exemplar 1"}
    empty = memory.remove_exemplars("SynthIAD", "tile", list(removed.exemplar_ids))
    assert empty.num_patches == 0 and empty.calibration is None
    with pytest.raises(UserError, match="no normal exemplars"):
        memory.inspect(texture(3), "SynthIAD", "tile")


def test_categories_are_separate_and_names_are_never_sql(tmp_path, backbone):
    memory = VisualMemory(tmp_path / "db", CONFIG, backbone)
    tricky = "x' OR '1'='1"
    memory.add_exemplars("SynthIAD", "tile", [texture(0), texture(1)])
    memory.add_exemplars("SynthIAD", tricky, [texture(5), texture(6)])
    assert memory.categories() == [("SynthIAD", "tile"), ("SynthIAD", tricky)]
    assert len(memory.exemplars("SynthIAD", tricky)) == 2
    memory.remove_exemplars("SynthIAD", tricky, [e.id for e in memory.exemplars("SynthIAD", tricky)])
    assert len(memory.exemplars("SynthIAD", "tile")) == 2 and memory.bank_info("SynthIAD", "tile").num_patches
    with pytest.raises(UserError, match="has no exemplar"):
        memory.remove_exemplars("SynthIAD", "tile", ["nope"])


def test_duplicates_are_skipped_and_ids_follow_the_pixels(tmp_path, backbone):
    memory = VisualMemory(tmp_path / "db", CONFIG, backbone)
    first = memory.add_exemplars("D", "c", [texture(0), texture(1)])
    again = memory.add_exemplars("D", "c", [texture(0), png(texture(1)), texture(0)], labels=["x", "y", "z"])
    assert again.skipped == ("x", "y", "z") and again.exemplar_ids == first.exemplar_ids
    assert again.version == first.version  # nothing new: no new bank version
    assert exemplar_id("D", "c", texture(0)) in first.exemplar_ids and set(first.added) == set(first.exemplar_ids)
    assert again.added == (first.added[0], first.added[1], first.added[0])


def test_bad_exemplars_are_refused_and_nothing_is_written(tmp_path, backbone):
    memory = VisualMemory(tmp_path / "db", CONFIG, backbone)
    memory.add_exemplars("D", "c", [texture(0), texture(1)])
    versions = memory.versions()
    truncated = png(texture(2))[:200]
    cases = [
        (b"not an image at all", "not a readable image"),
        (truncated, "could not be decoded"),
        (Image.new("RGB", (20, 200)), "at least 32 pixels"),
        (Image.new("RGB", (8, 8)), "at least 16 pixels"),
        (tmp_path / "missing.png", "not found"),
    ]
    for bad, message in cases:
        with pytest.raises(UserError, match=message):
            memory.add_exemplars("D", "c", [texture(3), bad])  # the good one is not written either
    for name in ("", "a\nb", "x" * 300):
        with pytest.raises(UserError, match="category"):
            memory.add_exemplars("D", name, [texture(3)])
    assert memory.versions() == versions and len(memory.exemplars("D", "c")) == 2


def test_odd_modes_and_sizes_are_normalised(tmp_path, backbone):
    memory = VisualMemory(tmp_path / "db", CONFIG, backbone)
    grey = texture(0).convert("L")
    palette = texture(1).convert("P")
    sixteen = Image.fromarray(np.asarray(texture(2).convert("L"), dtype=np.uint16) * 200)
    assert sixteen.mode == "I;16"
    alpha = texture(3).convert("RGBA")
    wide = texture(4, size=64).resize((150, 40))
    info = memory.add_exemplars("D", "c", [grey, palette, png(sixteen), alpha, wide])
    assert len(info.exemplar_ids) == 5
    stored = memory.exemplar_image("D", "c", info.exemplar_ids[0])
    assert stored.mode == "RGB"
    evidence = memory.inspect(grey, "D", "c")
    assert evidence.anomaly_map.shape == (64, 64)
    with pytest.raises(UserError, match="has no exemplar"):
        memory.exemplar_image("D", "c", "unknown")


def test_a_stale_bank_is_rebuilt_when_used(tmp_path, backbone):
    memory = VisualMemory(tmp_path / "db", CONFIG, backbone)
    memory.add_exemplars("D", "c", [texture(0), texture(1)])
    # an interrupted write: the exemplar row landed, the bank and calibration did not
    [manual], _ = memory.exemplar_store.add_many([NewExemplar(texture(7), "D", "c", "m")])
    before = memory.versions()[-1]
    evidence = memory.inspect(texture(8), "D", "c")
    info = memory.bank_info("D", "c")
    assert manual in info.exemplar_ids and info.version > before
    assert 0.0 <= evidence.score <= 1.0


def test_single_exemplar_calibrates_on_its_views_or_asks_for_more(tmp_path, backbone):
    memory = VisualMemory(tmp_path / "db", CONFIG, backbone)
    info = memory.add_exemplars("D", "c", [texture(0)])
    assert info.calibration is not None and info.calibration.num_scores == 2  # each view against the other
    plain = VisualMemory(tmp_path / "db2", MemoryConfig(image_size=64, views_per_exemplar=1), backbone)
    assert plain.add_exemplars("D", "c", [texture(0)]).calibration is None
    with pytest.raises(UserError, match="at least two normal exemplars"):
        plain.inspect(texture(1), "D", "c")
