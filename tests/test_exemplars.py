"""The one exemplar table: seeded in its creating commit, content ids, one id for templates and the memory bank."""

import lancedb
import pyarrow as pa
import pytest
from PIL import Image

from reason_iad.errors import UserError
from reason_iad.images import png_bytes
from reason_iad.memory.exemplars import EXEMPLAR_TABLE, ExemplarStore, NewExemplar, exemplar_id
from reason_iad.paths import EXAMPLES_DIR
from reason_iad.synth.exemplars import gallery_exemplars


def solid(colour, size=(40, 40)):
    return Image.new("RGB", size, colour)


def test_seeded_from_the_gallery_in_the_creating_commit_and_nearest_is_the_same_category(tmp_path):
    store = ExemplarStore(tmp_path / "kb", seed=gallery_exemplars)
    assert len(store.list()) == 8 and store.table.version == 1  # created with its rows: no empty version to race
    [wood] = store.list(category="wood")
    store.remove([wood.id])
    assert len(ExemplarStore(tmp_path / "kb", seed=gallery_exemplars).list()) == 7  # only once
    query = Image.open(EXAMPLES_DIR / "wood" / sorted(p.name for p in (EXAMPLES_DIR / "wood").glob("*.png"))[0])
    assert store.add(wood.image, wood.dataset, "wood", author="ana") == wood.id  # the id follows the pixels
    nearest = store.nearest(query, "wood")
    assert nearest.id == wood.id and nearest.image.size == wood.image.size
    assert store.nearest(query, "no-such-category") is None
    assert store.nearest(wood.image, None).id == wood.id  # any category: the closest one


def test_add_and_remove_are_versioned_and_validated(tmp_path):
    store = ExemplarStore(tmp_path / "kb")
    start = store.version
    grey16 = Image.new("I;16", (40, 40), 3000)
    first = store.add(grey16, "Mine", "gear", author="ana")
    assert store.version > start and store.list("gear")[0].image.mode == "RGB"
    assert store.records("gear")[0].author == "ana"
    with pytest.raises(UserError, match="at least 32 pixels"):
        store.add(Image.new("RGB", (20, 20)), "Mine", "gear", author="ana")
    with pytest.raises(UserError, match="category must be a non-empty"):
        store.add(grey16, "Mine", " ", author="ana")
    version = store.version
    with pytest.raises(UserError, match="has no exemplar"):
        store.remove([first, "x' OR '1'='1"])  # one unknown id: nothing is removed
    with pytest.raises(UserError, match="has no exemplar"):
        store.remove([first], "Mine", "shaft")  # not that category's
    assert store.version == version and len(store.list("gear")) == 1
    store.remove([first])
    assert store.list("gear") == []


def test_ids_are_per_category_and_repeats_are_stored_once(tmp_path):
    store = ExemplarStore(tmp_path / "kb")
    items = [NewExemplar(solid((9, 9, 9)), "Mine", "gear", "a"), NewExemplar(solid((9, 9, 9)), "Mine", "gear", "b")]
    ids, known = store.add_many(items)
    assert ids[0] == ids[1] and known == [] and len(store.records()) == 1
    again, known = store.add_many(items[:1] + [NewExemplar(solid((9, 9, 9)), "Mine", "shaft", "c")])
    assert known == [ids[0]] and again[1] != ids[0] and len(store.records()) == 2
    assert exemplar_id("Mine", "gear", solid((9, 9, 9))) == ids[0]


def _legacy_table(db, name, rows):
    db.create_table(name, data=pa.Table.from_pylist(rows))


def test_a_store_from_before_the_merge_keeps_its_exemplars_once(tmp_path):
    """Both old tables (templates and memory) are read into the new one's first commit, each image once."""
    db = lancedb.connect(str(tmp_path / "kb"))
    red, blue = solid((200, 0, 0)), solid((0, 0, 200))
    template = {"id": "mine/gear/0000", "dataset": "Mine", "category": "gear", "author": "ana", "note": "studio"}
    _legacy_table(db, "exemplars", [template | {"created_at": "2026-01-01", "png": png_bytes(red), "vector": [0.1]}])
    memory_row = {"dataset": "Mine", "category": "gear", "label": "x", "width": 40, "height": 40, "added_at": "t"}
    _legacy_table(
        db,
        "memory_exemplars",
        [
            memory_row | {"exemplar_id": "a", "png": png_bytes(red)},
            memory_row | {"exemplar_id": "b", "png": png_bytes(blue)},
        ],
    )
    store = ExemplarStore(tmp_path / "kb", seed=lambda: [NewExemplar(blue, "Mine", "gear", "seed")])
    records = store.records("gear", "Mine")
    assert len(records) == 2 and store.table.version == 1
    assert {r.id for r in records} == {exemplar_id("Mine", "gear", red), exemplar_id("Mine", "gear", blue)}
    assert {"exemplars", "memory_exemplars", EXEMPLAR_TABLE} <= set(db.list_tables().tables)  # old tables untouched
