"""`bench studio` against a live studio: 8 inspecting clients, 100 edits and 2 bank changes at once, then overflow.

The studio runs in this process on 127.0.0.1 with a tiny random Qwen2.5-VL, a small knowledge base and a visual
memory (EfficientNet-Lite0 at 64 px); the load is driven only through the HTTP API, endpoints found by name.
"""

import pytest

from demo.studio import build_studio, launch_options
from knowledge_helpers import make_store
from ports import free_port
from reason_iad.annotations import AnnotationStore
from reason_iad.bench.studio_bench import LoadPlan, run_studio_load
from reason_iad.bench.studio_checks import check_banks, check_edits
from reason_iad.config import AppConfig, MemoryConfig, ReasoningConfig, StudioConfig
from reason_iad.memory import open_memory
from reason_iad.paths import EXAMPLES_DIR
from reason_iad.pipeline import Pipeline
from reason_iad.synth import render_sample

pytestmark = pytest.mark.slow  # ~60-90 s on 2 cores

QUEUE_SIZE = 16  # the bound the studio's queue is launched with here


@pytest.fixture
def studio(tmp_path):
    from reason_iad.backends.loading import load_backend
    from reason_iad.backends.tiny import save_tiny_model
    from reason_iad.config import BackendConfig

    folder = tmp_path / "kb"
    backend = load_backend(BackendConfig(model=str(save_tiny_model("qwen2_5_vl", tmp_path / "model")), device="cpu"))
    config = AppConfig(
        reasoning=ReasoningConfig(num_latent_tokens=2, num_steps=3), studio=StudioConfig(port=free_port())
    )
    memory = open_memory(folder, MemoryConfig(enabled=True, image_size=64, views_per_exemplar=2))
    memory.add_exemplars("Test", "wood", [render_sample("wood", None, seed, 96).image for seed in (1, 2, 3)])
    pipeline = Pipeline(backend, config, make_store(folder), memory.exemplar_store, AnnotationStore(folder), memory)
    blocks = build_studio(config, pipeline, examples=[])
    blocks.queue(default_concurrency_limit=4, max_size=QUEUE_SIZE).launch(
        **launch_options(config) | {"prevent_thread_lock": True, "quiet": True}
    )
    yield f"http://127.0.0.1:{config.studio.port}/", pipeline
    blocks.close()


def test_load_loses_nothing_keeps_banks_consistent_and_refuses_overflow_clearly(studio):
    url, pipeline = studio
    bank_versions = len(pipeline.memory.versions())
    plan = LoadPlan(
        image=EXAMPLES_DIR / "wood" / "liquid.png",
        exemplar=EXAMPLES_DIR / "wood" / "good.png",
        choice="Test / wood",
        queue_size=QUEUE_SIZE,
    )
    result = run_studio_load(url, plan)
    print(result.report())
    assert result.errors == []
    assert len(result.inspect_ms) == 8 and all("Answer" in a for a in result.answers)
    assert len(result.edits) == 100 and check_edits(pipeline.store, result.edits) == []
    assert len(pipeline.store.list(dataset="Load")) == 100
    assert list(result.exemplars.values()) == [False]  # added, then removed: two bank changes
    assert len(pipeline.memory.versions()) >= bank_versions + 2
    assert check_banks(pipeline.memory, result.exemplars) == []
    overflow = result.overflow
    assert len(overflow.refusals) >= 1 and overflow.other_errors == ()
    assert all("Queue is full" in m and "try again" in m for m in overflow.refusals)
    assert max(overflow.refusal_ms) < 10_000  # client-side, upload included: refused, not left waiting for a slot
    assert overflow.probe_ms is not None and overflow.probe_ms < 1000 and "Queue is full" in overflow.probe_reply
    assert overflow.next_inspect_ms is not None  # the studio still serves afterwards
