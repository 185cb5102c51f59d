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
    assert [k.id for k in inspection.knowledge] == ["test/wood/stain", "test/wood/scratch", "test/wood/hole",
                                                    "test/wood/good"]  # fmt: skip
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
