import pytest

from knowledge_helpers import SEED, entry, make_store
from reason_iad.errors import UserError
from reason_iad.knowledge.embedders import FakeEmbedder
from reason_iad.knowledge.store import KnowledgeStore


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path / "kb")


def test_seeded_store_lists_and_gets(store):
    assert store.count() == len(SEED)
    assert [s.entry.defect for s in store.list(category="wood")] == ["good", "hole", "scratch", "stain"]
    assert store.get("test/tile/crack").entry.text.startswith("A blue crack")
    assert store.changes()[0].action == "seed"


def test_add_update_delete_are_versioned_with_author_and_summary(store):
    start = store.version
    v1 = store.add([entry("tile", "chip", "A missing corner.")], author="ana")
    v2 = store.update("test/tile/chip", author="bo", text="A missing corner piece.")
    v3 = store.delete(["test/tile/chip"], author="cy", summary="duplicate of crack")
    assert start < v1 < v2 < v3
    history = store.changes()[-3:]
    assert [(c.author, c.action, c.version) for c in history] == [
        ("ana", "add", v1),
        ("bo", "update", v2),
        ("cy", "delete", v3),
    ]
    assert history[-1].summary == "duplicate of crack" and history[0].ids == ("test/tile/chip",)
    assert [s.entry.text for s in store.list(version=v2) if s.entry.defect == "chip"] == ["A missing corner piece."]
    created_at = store.list(version=v1)[0].created_at
    assert store.list(version=v2)[0].created_at == created_at  # an edit keeps the creation time


def test_restore_brings_a_version_back_as_a_new_version(store):
    before = store.version
    store.delete(["test/wood/stain"], author="ana")
    restored = store.restore(before, author="ana")
    assert restored > before + 1
    assert store.get("test/wood/stain").entry.text.startswith("A red blotch")
    assert store.changes()[-1].action == "restore"


def test_a_past_version_view_reads_that_version_and_refuses_writes(store):
    from reason_iad.knowledge.search import search

    before, count = store.version, store.count()
    store.delete(["test/wood/stain"], author="ana")
    view = store.at_version(before)
    assert view.version == before and view.count() == count and store.count() == count - 1
    assert "test/wood/stain" in {s.entry.id for s in view.list(category="wood")}
    assert "test/wood/stain" in view.get_many(["test/wood/stain"])
    assert "test/wood/stain" in {h.entry.id for h in search(view, "red blotch", "semantic", 20)}
    assert "test/wood/stain" not in {h.entry.id for h in search(store, "red blotch", "semantic", 20)}
    with pytest.raises(UserError, match="read-only"):
        view.add([entry("tile", "chip", "A missing corner.")], author="ana")
    with pytest.raises(UserError, match="does not exist"):
        store.at_version(store.version + 5)
    assert store.version == before + 1  # the view never moved the store


def test_tags_name_versions(store):
    version = store.tag("release-1")
    store.add([entry("tile", "chip")], author="ana")
    assert store.tags() == {"release-1": version}
    assert len(store.list(version=store.tags()["release-1"])) == len(SEED)
    with pytest.raises(UserError, match="exists already"):
        store.tag("release-1")
    with pytest.raises(UserError, match="tag name"):
        store.tag("bad name; drop")


def _unchanged(store, action):
    count, version, history = store.count(), store.version, len(store.changes())
    with pytest.raises(UserError):
        action()
    assert (store.count(), store.version, len(store.changes())) == (count, version, history)


@pytest.mark.parametrize(
    "values",
    [
        {"text": "   "},
        {"text": "x" * 8001},
        {"text": "bell\x07 inside"},
        {"title": ""},
        {"category": " "},
    ],
)
def test_invalid_edits_write_nothing(store, values):
    _unchanged(store, lambda: store.update("test/wood/scratch", author="ana", **values))


def test_refused_writes_leave_count_and_version_unchanged(store):
    _unchanged(store, lambda: store.add([entry("wood", "scratch")], author="ana"))  # exists already
    _unchanged(store, lambda: store.add([entry("tile", "x"), entry("tile", "x")], author="ana"))  # duplicate ids
    _unchanged(store, lambda: store.add([entry("tile", "y")], author="  "))  # no author
    _unchanged(store, lambda: store.delete(["test/wood/nope"], author="ana"))
    _unchanged(store, lambda: store.update("test/wood/nope", author="ana", text="t"))
    _unchanged(store, lambda: store.update("test/wood/scratch", author="ana", id="other"))
    _unchanged(store, lambda: store.restore(999, author="ana"))


@pytest.mark.parametrize("nasty", ["O'Brien", "x' OR '1'='1", "'; DROP TABLE knowledge; --", 'quote " inside'])
def test_quotes_and_sql_like_text_match_exactly(store, nasty):
    store.add([entry("tile", nasty, title=nasty, text=f"Text with {nasty}.")], author=nasty)
    stored = store.get(f"test/tile/{nasty}".lower())
    assert stored.entry.title == nasty
    assert store.list(category=nasty) == []  # a filter value never widens the query
    assert len(store.list(dataset="Test", category="tile")) == 3
    store.delete([stored.entry.id], author=nasty)
    assert store.count() == len(SEED)  # exactly one row went
    assert store.changes()[-1].author == nasty


def test_reopening_with_other_embedders_is_refused(tmp_path):
    make_store(tmp_path / "kb")
    with pytest.raises(UserError, match="re-embed"):
        KnowledgeStore(tmp_path / "kb", FakeEmbedder(16))
    assert KnowledgeStore(tmp_path / "kb", FakeEmbedder(32), make_store(tmp_path / "other").image_embedder).count()


def test_reembed_switches_embedders_keeps_entries_and_refuses_cross_schema_restore(tmp_path):
    from reason_iad.knowledge.reembed import reembed

    store = make_store(tmp_path / "kb")
    before = store.version
    store.update("test/wood/scratch", author="ana", text="Edited before the switch.")
    switched = reembed(str(tmp_path / "kb"), FakeEmbedder(48), None, author="ana")
    assert switched.text_embedder.dim == 48 and switched.count() == len(SEED)
    assert switched.get("test/wood/scratch").entry.text == "Edited before the switch."
    assert switched.changes()[-1].action == "reembed"
    with pytest.raises(UserError, match="other embedders"):
        switched.restore(before, author="ana")
    with pytest.raises(UserError, match="re-embed"):
        make_store(tmp_path / "kb")  # the old embedders no longer match


def test_thousands_of_ids_in_one_lookup_or_delete_are_one_flat_filter(store):
    # a chain of 1000+ OR terms overflows LanceDB's stack and kills the process (a large import did)
    many = [entry("bulk", f"d{i}", "Bulk.") for i in range(1500)]
    store.add(many, author="ana")
    tricky = "test/bulk/x' or '1'='1"
    assert len(store.get_many([e.id for e in many] + [tricky])) == 1500
    with pytest.raises(UserError, match="and 1490 more; edit them instead"):
        store.add(many, author="ana")  # refused, and the message stays short
    store.delete([e.id for e in many[:1200]], author="ana")
    assert store.count() == len(SEED) + 300
