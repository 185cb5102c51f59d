import pytest
from PIL import Image

from reason_iad.errors import UserError
from reason_iad.knowledge.embedders import ThumbnailEmbedder
from reason_iad.knowledge.exemplars import ExemplarStore
from reason_iad.paths import EXAMPLES_DIR


def test_seeded_from_the_gallery_in_the_creating_commit_and_nearest_is_the_same_category(tmp_path):
    store = ExemplarStore(tmp_path / "kb", ThumbnailEmbedder(), seed_dir=EXAMPLES_DIR)
    assert len(store.list()) == 8 and store.table.version == 1  # created with its rows: no empty version to race
    [wood] = store.list(category="wood")
    store.remove(wood.id)
    assert len(ExemplarStore(tmp_path / "kb", ThumbnailEmbedder(), seed_dir=EXAMPLES_DIR).list()) == 7  # only once
    query = Image.open(EXAMPLES_DIR / "wood" / sorted(p.name for p in (EXAMPLES_DIR / "wood").glob("*.png"))[0])
    store.add(wood.image, wood.dataset, "wood", author="ana")
    [wood] = store.list(category="wood")
    nearest = store.nearest(query, "wood")
    assert nearest.id == wood.id and nearest.image.size == wood.image.size
    assert store.nearest(query, "no-such-category") is None


def test_add_and_remove_are_versioned_and_validated(tmp_path):
    store = ExemplarStore(tmp_path / "kb", ThumbnailEmbedder())
    start = store.version
    grey16 = Image.new("I;16", (40, 40), 3000)
    exemplar_id = store.add(grey16, "Mine", "gear", author="ana")
    assert store.version > start and store.list("gear")[0].image.mode == "RGB"
    with pytest.raises(UserError, match="at least 16 pixels"):
        store.add(Image.new("RGB", (8, 8)), "Mine", "gear", author="ana")
    with pytest.raises(UserError, match="needs a dataset"):
        store.add(grey16, "Mine", "gear", author=" ")
    store.remove(exemplar_id)
    assert store.list("gear") == []
    with pytest.raises(UserError, match="no exemplar"):
        store.remove("x' OR '1'='1")
