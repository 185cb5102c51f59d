import pytest

from knowledge_helpers import make_store, solid
from reason_iad.errors import UserError
from reason_iad.knowledge.search import query_vector, retrieve, search, search_by_image


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path / "kb")


def test_full_text_semantic_and_hybrid_find_the_entry(store):
    for mode in ("fts", "semantic", "hybrid"):
        hits = search(store, "red blotch stain", mode=mode, k=3)
        assert hits[0].entry.defect == "stain", mode
    scoped = search(store, "crack", mode="fts", category="wood")
    assert all(h.entry.category == "wood" for h in scoped)


@pytest.mark.parametrize("query", ["O'Brien", "x' OR '1'='1", "'; DROP TABLE knowledge; --"])
def test_injection_strings_are_just_queries(store, query):
    for mode in ("fts", "semantic", "hybrid"):
        hits = search(store, query, mode=mode, k=10, category=query)
        assert hits == []  # the category filter is a literal: nothing is called that
    assert store.count() == 6


def test_bad_queries_are_refused(store):
    with pytest.raises(UserError, match="empty"):
        search(store, "   ")
    with pytest.raises(UserError, match="longer"):
        search(store, "x" * 2000)
    with pytest.raises(UserError, match="mode"):
        search(store, "x", mode="sql")


def test_image_retrieval_ranks_by_the_image_and_adds_the_normal_entry(store):
    red = retrieve(store, solid((200, 10, 10)), category="wood", k=1)
    assert [h.entry.defect for h in red.hits] == ["stain", "good"]
    assert red.method == "image" and red.version == store.version
    green = retrieve(store, solid((10, 200, 10)), category="wood", k=1, include_normal=False)
    assert [h.entry.defect for h in green.hits] == ["hole"]
    anywhere = search_by_image(store, solid((10, 10, 200)), k=1)
    assert anywhere[0].entry.defect == "crack"  # without a category: across all
    assert "Description:" in red.texts[0]


def test_a_focus_box_adds_the_crop_around_it_to_the_image_query(store):
    import numpy as np
    from PIL import Image

    from reason_iad.memory.evidence import focus_crop

    image = Image.new("RGB", (100, 100), (10, 200, 10))
    image.paste((200, 10, 10), (60, 60, 100, 100))
    box = (60, 60, 100, 100)
    embedder = store.image_embedder
    whole, crop = embedder.embed_images([image])[0], embedder.embed_images([focus_crop(image, box)])[0]
    assert np.allclose(query_vector(embedder, image), whole)
    focused = query_vector(embedder, image, box)
    assert np.allclose(focused, (whole + crop) / np.linalg.norm(whole + crop))
    hits = retrieve(store, image, category="wood", k=1, focus=box)
    assert hits.method == "image + anomaly crop" and hits.hits[-1].entry.defect == "good"


def test_an_edit_changes_the_very_next_retrieval(store):
    before = retrieve(store, solid((200, 10, 10)), category="wood", k=1)
    store.update("test/wood/hole", author="ana", text="A red hole with red edges, red red.")
    after = retrieve(store, solid((200, 10, 10)), category="wood", k=1)
    assert before.hits[0].entry.defect == "stain" and after.hits[0].entry.defect == "hole"
    assert after.version > before.version


def test_without_image_embedder_ranks_by_question_or_uses_all(tmp_path):
    store = make_store(tmp_path / "text-only", image=False)
    by_question = retrieve(store, solid((1, 2, 3)), category="wood", k=1, question="Is there a stain?")
    assert by_question.method == "question" and by_question.hits[0].entry.defect == "stain"
    everything = retrieve(store, solid((1, 2, 3)), category="wood")
    assert everything.method == "all" and len(everything.hits) == 4
    with pytest.raises(UserError, match="needs a category"):
        retrieve(store, solid((1, 2, 3)))
