import dataclasses

import pytest

from knowledge_helpers import make_store, solid
from reason_iad.config import AppConfig, ReasoningConfig
from reason_iad.errors import UserError
from reason_iad.knowledge.embedders import ThumbnailEmbedder
from reason_iad.knowledge.exemplars import ExemplarStore
from reason_iad.pipeline import Pipeline
from reason_iad.types import Inspection, ReasoningStep

FAST = ReasoningConfig(num_latent_tokens=2, num_steps=2)


@pytest.fixture
def pipeline(tiny_backends, tmp_path):
    exemplars = ExemplarStore(tmp_path / "kb", ThumbnailEmbedder())
    exemplars.add(solid((90, 60, 30)), "Test", "wood", author="ana")
    return Pipeline(tiny_backends["qwen2_5_vl"], AppConfig(reasoning=FAST), make_store(tmp_path / "kb"), exemplars)


def test_stream_yields_steps_then_the_inspection_with_its_knowledge(pipeline):
    items = list(pipeline.inspect_stream(solid((200, 10, 10)), category="wood", auto_template=True))
    assert [type(i) for i in items] == [ReasoningStep, ReasoningStep, Inspection]
    inspection = items[-1]
    assert [k.id for k in inspection.knowledge] == [
        "test/wood/stain",
        "test/wood/scratch",
        "test/wood/hole",
        "test/wood/good",
    ]
    assert inspection.knowledge_version == pipeline.store.version
    assert inspection.template.startswith("test/wood/")


def test_pinned_entries_replace_retrieval_and_edits_show_up_next_time(pipeline):
    first = pipeline.inspect(solid((200, 10, 10)), category="wood", pinned=["test/wood/hole"])
    assert [(k.id, k.pinned) for k in first.knowledge] == [("test/wood/hole", True)]
    pipeline.store.update("test/wood/hole", author="ana", text="Edited.")
    second = pipeline.inspect(solid((200, 10, 10)), category="wood", pinned=["test/wood/hole"])
    assert second.knowledge_version > first.knowledge_version
    with pytest.raises(UserError, match="no longer exist"):
        pipeline.inspect(solid((200, 10, 10)), category="wood", pinned=["test/wood/gone"])


def test_plain_mode_uses_no_knowledge(pipeline):
    plain = dataclasses.replace(FAST, mode="plain")
    inspection = pipeline.inspect(solid((1, 2, 3)), category="wood", reasoning=plain)
    assert inspection.knowledge == () and inspection.knowledge_version is None and inspection.steps == ()


def test_visual_memory_evidence_is_streamed_shown_to_the_model_and_summarised(pipeline, tmp_path):
    from reason_iad.config import MemoryConfig
    from reason_iad.memory import AnomalyEvidence, open_memory
    from reason_iad.synth import render_sample

    memory = open_memory(tmp_path / "memory", MemoryConfig(enabled=True))
    memory.add_exemplars("Test", "wood", [render_sample("wood", None, 100 + i, 128).image for i in range(6)])
    pipeline.memory = memory
    defective = render_sample("wood", "hole", 5, 128).image
    for mode in ("text", "box"):
        config = dataclasses.replace(FAST, evidence=mode, injection_prior="mix")
        items = list(pipeline.inspect_stream(defective, category="wood", reasoning=config))
        assert isinstance(items[0], AnomalyEvidence) and isinstance(items[-1], Inspection)
        summary = items[-1].anomaly
        assert summary.shown_as == mode and summary.verdict in ("normal", "suspicious", "anomalous")
        assert summary.region == items[0].region
    unknown = pipeline.inspect(defective, category="gear", reasoning=dataclasses.replace(FAST, mode="latent"))
    assert unknown.anomaly is None  # no bank for that category (and not a SynthIAD one): no evidence, no error
    seeded = pipeline.inspect(defective, category="tile", reasoning=dataclasses.replace(FAST, mode="latent"))
    assert seeded.anomaly is not None and ("SynthIAD", "tile") in memory.categories()  # seeded on first use


def test_given_knowledge_texts_replace_retrieval_and_the_memory_can_be_left_out(pipeline, tmp_path, monkeypatch):
    from reason_iad.config import MemoryConfig
    from reason_iad.memory import AnomalyEvidence, open_memory
    from reason_iad.synth import render_sample

    memory = open_memory(tmp_path / "memory", MemoryConfig(enabled=True))
    memory.add_exemplars("Test", "wood", [render_sample("wood", None, 100 + i, 128).image for i in range(3)])
    pipeline.memory = memory
    prompts = []
    prepare = pipeline.backend.prepare
    monkeypatch.setattr(pipeline.backend, "prepare", lambda m, **k: prompts.append(m) or prepare(m, **k))
    monkeypatch.setattr(pipeline, "knowledge_for", lambda *a, **k: pytest.fail("retrieval must not run"))
    image = render_sample("wood", "hole", 5, 128).image
    items = list(
        pipeline.inspect_stream(
            image, category="wood", knowledge_texts=["<Knot>\nA dark round knot."], use_memory=False
        )
    )
    assert not any(isinstance(i, AnomalyEvidence) for i in items) and items[-1].anomaly is None
    assert items[-1].knowledge == () and any(
        "A dark round knot." in p for m in prompts[-1] for p in m.parts if isinstance(p, str)
    )
    assert any(
        isinstance(i, AnomalyEvidence) for i in pipeline.inspect_stream(image, category="wood", knowledge_texts=[])
    )
