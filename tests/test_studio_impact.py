"""The Knowledge tab: "Check impact" (before/after bars, flipped answers with thumbnails) and its opening listing."""

import json

import pytest
from impact_helpers import carpet_entries, knowledge_reading_model
from PIL import Image

from demo.handlers import StudioHandlers
from demo.knowledge_panels import ImpactHandlers
from demo.studio import build_studio
from knowledge_helpers import make_store
from reason_iad.annotations import AnnotationStore
from reason_iad.config import AppConfig
from reason_iad.errors import UserError
from reason_iad.eval.impact import HELD_OUT_SEED, held_out_set
from reason_iad.eval.impact_cache import CACHE_TABLE
from reason_iad.memory.exemplars import ExemplarStore
from reason_iad.pipeline import Pipeline
from reason_iad.synth import generate_dataset

HOLE = "synthiad/carpet/hole"


@pytest.fixture(scope="module")
def carpet_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("studio-impact-set") / "data"
    generate_dataset(root, per_category=2, image_size=96, categories=["carpet"], templates=4)
    return root


@pytest.fixture
def studio(tiny_backends, tmp_path):
    store = make_store(tmp_path / "kb", carpet_entries(), image=False)
    return StudioHandlers(Pipeline(tiny_backends["qwen2_5_vl"], AppConfig(), store), [])


def test_check_impact_shows_bars_and_the_flipped_answers(studio, carpet_set, monkeypatch):
    calls = knowledge_reading_model(monkeypatch)
    store = studio.pipeline.store
    edited = store.update(HOLE, "ana", text="Where in the image is the defect? A hole shows the dark backing.")
    history = store.changes()
    seeded = history[-2].version
    shown = []

    def progress(value, desc=None):
        shown.append((desc, value))

    impact = ImpactHandlers(studio)
    summary, figure, subtasks, gallery, flips = impact.check(
        None, None, "SynthIAD / carpet", str(carpet_set), "knowledge", None, progress
    )
    assert f"knowledge version {seeded} → {edited}" in summary  # the defaults: before the last edit, the latest
    before, after = figure.data
    assert list(before.x) == [row[0] for row in subtasks] and subtasks[-1][0] == "all"
    assert [round(v, 1) for v in before.y] == [row[2] for row in subtasks]
    assert [round(v, 1) for v in after.y] == [row[3] for row in subtasks]
    assert flips and len(gallery) == len(flips) and f"**{len(flips)} answer" in summary
    for (thumbnail, caption), row in zip(gallery, flips, strict=True):
        assert isinstance(thumbnail, Image.Image) and max(thumbnail.size) <= ImpactHandlers.THUMBNAIL
        assert caption.startswith(f"{row[1]}: {row[3]} → {row[4]} ({row[6]})")
        assert row[3] != row[4]
    assert ("answering", (len(calls), len(calls))) in shown
    assert store.version == edited and store.changes() == history

    calls.clear()
    summary, *_ = impact.check(seeded, edited, "SynthIAD / carpet", str(carpet_set), "knowledge", None)
    assert calls == [] and "the model answered 0 prompts" in summary


def test_impact_check_needs_a_curator_when_auth_is_on_and_checks_its_input(studio, carpet_set):
    guarded = StudioHandlers(studio.pipeline, [], curators={"ana"}, auth_required=True)
    with pytest.raises(UserError, match="log in"):
        ImpactHandlers(guarded).check(None, None, "SynthIAD / carpet", str(carpet_set), "knowledge", None)
    impact = ImpactHandlers(studio)
    with pytest.raises(UserError, match="choose a category"):
        impact.check(None, None, None, str(carpet_set), "knowledge", None)
    with pytest.raises(UserError, match="does not exist"):
        impact.check(1, 99, "SynthIAD / carpet", str(carpet_set), "knowledge", None)
    with pytest.raises(UserError, match="not a SynthIAD category"):
        impact.check(None, None, "MVTec / bottle", "", "knowledge", None)  # SynthIAD has a bottle, MVTec's is real
    assert CACHE_TABLE not in studio.pipeline.store.db.list_tables().tables


def test_the_default_set_is_held_out_and_built_once(tmp_path):
    root = held_out_set("SynthIAD", "carpet", tmp_path)
    assert root.name == f"synthiad-seed{HELD_OUT_SEED}-carpet" and HELD_OUT_SEED not in (7, 1000)
    built = (root / "mmad.json").stat().st_mtime_ns
    assert held_out_set("SynthIAD", "carpet", tmp_path) == root and (root / "mmad.json").stat().st_mtime_ns == built
    assert {key.split("/")[1] for key in json.loads((root / "mmad.json").read_text())} == {"carpet"}


def test_the_knowledge_tab_opens_listing_the_first_category(tmp_path):
    store = make_store(tmp_path / "kb")  # Test/tile and Test/wood
    exemplars = ExemplarStore(tmp_path / "kb")
    pipeline = Pipeline(None, AppConfig(), store, exemplars, AnnotationStore(tmp_path / "kb"))
    blocks = build_studio(AppConfig(), pipeline, examples=[])
    entries = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "entries")
    [opening] = [f for f in blocks.fns.values() if entries in f.outputs and any(t[1] == "load" for t in f.targets)]
    rows = opening.fn(*[component.value for component in opening.inputs])
    assert rows and {(row[1], row[2]) for row in rows} == {("Test", "tile")}
    assert any(getattr(b, "elem_id", None) == "check-impact" for b in blocks.blocks.values())
