import dataclasses

import pytest

from knowledge_helpers import make_store, solid
from reason_iad.config import AppConfig, ReasoningConfig
from reason_iad.errors import UserError
from reason_iad.memory.exemplars import ExemplarStore
from reason_iad.pipeline import Pipeline
from reason_iad.types import Inspection, ReasoningStep

FAST = ReasoningConfig(num_latent_tokens=2, num_steps=2)


@pytest.fixture
def pipeline(tiny_backends, tmp_path):
    exemplars = ExemplarStore(tmp_path / "kb")
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
    assert inspection.template in {r.id for r in pipeline.exemplars.records("wood")}


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
    from reason_iad.synth.exemplars import rendered_exemplars

    memory = open_memory(tmp_path / "kb", MemoryConfig(enabled=True), exemplars=pipeline.exemplars)
    memory.add_exemplars("Test", "wood", [render_sample("wood", None, 100 + i, 128).image for i in range(6)])
    pipeline.exemplars.add_many([e for e in rendered_exemplars(2) if e.category == "tile"])  # as a new studio's
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
    assert memory.bank_info("SynthIAD", "tile").version == 0  # seeded exemplars, no bank yet
    seeded = pipeline.inspect(defective, category="tile", reasoning=dataclasses.replace(FAST, mode="latent"))
    assert seeded.anomaly is not None and memory.bank_info("SynthIAD", "tile").version > 0  # built on first use


def test_one_exemplar_is_the_template_and_in_the_bank_under_one_id(pipeline, tmp_path):
    from reason_iad.config import MemoryConfig
    from reason_iad.memory import open_memory
    from reason_iad.synth import render_sample

    pipeline.memory = open_memory(tmp_path / "kb", MemoryConfig(enabled=True), exemplars=pipeline.exemplars)
    normals = [render_sample("tile", None, 300 + i, 128).image for i in range(3)]
    update = pipeline.add_exemplars(normals, "Test", "tile", author="ana")
    assert update.bank is not None and set(update.bank.exemplar_ids) == set(update.ids)
    assert pipeline.exemplars.nearest(normals[1], "tile").id == update.ids[1]  # the template is the same row
    removed = pipeline.remove_exemplar(update.ids[1], "Test", "tile")
    assert update.ids[1] not in removed.bank.exemplar_ids
    assert update.ids[1] not in {r.id for r in pipeline.exemplars.records("tile")}
    assert pipeline.memory.exemplars("Test", "tile") == pipeline.exemplars.records("tile", "Test")


def test_given_knowledge_texts_replace_retrieval_and_the_memory_can_be_left_out(pipeline, tmp_path, monkeypatch):
    from reason_iad.config import MemoryConfig
    from reason_iad.memory import AnomalyEvidence, open_memory
    from reason_iad.synth import render_sample

    memory = open_memory(tmp_path / "kb", MemoryConfig(enabled=True), exemplars=pipeline.exemplars)
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


def test_a_memory_over_another_exemplar_table_is_refused(tiny_backends, tmp_path):
    from reason_iad.config import MemoryConfig
    from reason_iad.memory import open_memory

    memory = open_memory(tmp_path / "kb", MemoryConfig(enabled=True))
    assert Pipeline(None, AppConfig(), memory=memory).exemplars is memory.exemplar_store  # one home, taken over
    with pytest.raises(ValueError, match="must share one exemplar table"):
        Pipeline(None, AppConfig(), exemplars=ExemplarStore(tmp_path / "elsewhere"), memory=memory)


def test_warming_builds_missing_banks_once_and_skips_what_it_cannot(tmp_path):
    import threading

    from reason_iad.config import MemoryConfig
    from reason_iad.memory import open_memory
    from reason_iad.synth import render_sample

    memory = open_memory(tmp_path / "kb", MemoryConfig(enabled=True, image_size=64))
    memory.exemplar_store.add(render_sample("tile", None, 1, 96).image, "Test", "tile")
    memory.exemplar_store.add(render_sample("tile", None, 2, 96).image, "Test", "tile")
    pipeline = Pipeline(None, AppConfig(), memory=memory)
    assert memory.bank_info("Test", "tile").version == 0  # stored exemplars, no bank yet
    pairs = [("Test", "tile"), ("Test", "no-exemplars")]
    workers = [threading.Thread(target=pipeline.warm_banks, args=(pairs,)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    built = memory.bank_info("Test", "tile")
    assert built.version > 0 and len(memory.versions()) == 2  # two warmers, one build (the check is repeated locked)
    assert pipeline.warm_banks(pairs) == 0  # nothing left to build
