import dataclasses

from PIL import Image

from demo.render import answer_markdown
from fake_backend import FakeBackend
from reason_iad.config import ReasoningConfig
from reason_iad.reasoning.engine import NO_EVIDENCE_PRIOR, InspectionRequest, Reasoner
from reason_iad.reasoning.prompt import Question
from reason_iad.reasoning.report import format_inspection

CONFIG = ReasoningConfig(mode="latent", num_latent_tokens=2, num_steps=2, injection_prior="mix")


def _inspect(config):
    request = InspectionRequest(Image.new("RGB", (32, 32)), Question.anomaly())
    return Reasoner(FakeBackend(), config).run(request)


def test_the_ui_and_the_cli_say_when_the_anomaly_prior_fell_back_to_attention():
    inspection = _inspect(CONFIG)
    assert NO_EVIDENCE_PRIOR in answer_markdown(inspection)
    assert NO_EVIDENCE_PRIOR in format_inspection(inspection)
    quiet = _inspect(dataclasses.replace(CONFIG, injection_prior="attention"))
    assert "⚠" not in answer_markdown(quiet)


def test_clipped_steps_are_reported():
    clipped = _inspect(dataclasses.replace(CONFIG, injection_prior="attention", learning_rate=1.0))
    assert "2 of 2 latent steps were clipped" in answer_markdown(clipped)
    assert "2 of 2 steps clipped" in format_inspection(clipped)
