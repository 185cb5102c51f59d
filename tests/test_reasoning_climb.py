"""On the shipped inspector: the latent update climbs the reward, under ES and under autograd, and a reversed
update makes it fall (so a test can tell a climbing update from a falling one)."""

import dataclasses
import json

import pytest
import torch
from PIL import Image

from reason_iad.config import BackendConfig, ReasoningConfig
from reason_iad.paths import EXAMPLES_DIR
from reason_iad.reasoning import engine
from reason_iad.reasoning.engine import InspectionRequest, Reasoner
from reason_iad.reasoning.prompt import Question

CLIMB = ReasoningConfig(mode="latent", readout="likelihood", num_steps=8, inject_patches=False, learning_rate=0.05)


@pytest.fixture(scope="module")
def inspector():
    from reason_iad.backends.embedded import inspector_available, load_embedded

    if not inspector_available():
        pytest.fail("the shipped inspector is missing from reason_iad/assets/inspector")
    return load_embedded(BackendConfig(device="cpu"))


@pytest.fixture(scope="module")
def request_():
    items = json.loads((EXAMPLES_DIR / "index.json").read_text())
    item = next(i for i in items if i["image"] == "carpet/color.png")
    q = next(q for q in item["questions"] if q["type"] == "Defect Classification")
    image = Image.open(EXAMPLES_DIR / item["image"]).convert("RGB")
    template = Image.open(EXAMPLES_DIR / "carpet/good.png").convert("RGB")
    return InspectionRequest(image, Question(q["Question"], tuple(q["Options"].items())), template=template)


def _reversed(monkeypatch, optimizer: str) -> None:
    if optimizer == "es":
        ascent = engine.es_gradient
        monkeypatch.setattr(engine, "es_gradient", lambda *args, **kwargs: -ascent(*args, **kwargs))
        return

    class Descending(torch.optim.Adam):
        def __init__(self, params, **kwargs):
            super().__init__(params, **(kwargs | {"maximize": False}))

    monkeypatch.setattr(engine.torch.optim, "Adam", Descending)


@pytest.mark.parametrize("optimizer", ["es", "autograd"])
def test_the_reward_rises_over_8_steps_and_falls_when_the_update_is_reversed(
    inspector, request_, monkeypatch, optimizer
):
    config = dataclasses.replace(CLIMB, optimizer=optimizer)
    up = [s.reward for s in Reasoner(inspector, config).run(request_).steps]
    assert sum(b > a for a, b in zip(up, up[1:], strict=False)) >= 6, up  # rises at (nearly) every step
    assert up[-1] > up[0] + 0.002, up
    _reversed(monkeypatch, optimizer)
    down = [s.reward for s in Reasoner(inspector, config).run(request_).steps]
    assert down[0] == pytest.approx(up[0], abs=1e-6)  # same start: only the direction differs
    assert sum(b < a for a, b in zip(down, down[1:], strict=False)) >= 5, down  # and falls when reversed
    assert down[-1] < down[0] - 0.002, down


def test_the_es_learning_rate_changes_the_trace_and_rarely_clips(inspector, request_):
    traces = {}
    for lr in (0.01, 0.05, 1.0):
        steps = Reasoner(inspector, dataclasses.replace(CLIMB, learning_rate=lr, num_steps=3)).run(request_).steps
        traces[lr] = [s.reward for s in steps]
        assert all(s.clipped for s in steps) == (lr >= 0.1)  # the rail binds only past sigma (0.1 rms)
    assert len({tuple(t) for t in traces.values()}) == 3
