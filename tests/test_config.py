import dataclasses

import pytest

from reason_iad.config import AppConfig, BackendConfig, KnowledgeConfig, StudioConfig
from reason_iad.errors import UserError


def test_json_round_trip_preserves_every_field():
    config = AppConfig(
        backend=BackendConfig(model="/models/qwen", quantization="4bit", device="cuda", dtype="bfloat16"),
        knowledge=KnowledgeConfig(db_uri="/tmp/kb", top_k=5, include_normal_entry=False),
        studio=StudioConfig(host="0.0.0.0", port=8080, share=True),
    )
    again = AppConfig.from_json(config.to_json())
    assert again == config
    assert dataclasses.asdict(again)["backend"]["quantization"] == "4bit"


def test_partial_json_keeps_defaults():
    config = AppConfig.from_json('{"studio": {"port": 9000}}')
    assert config.studio.port == 9000
    assert config.backend == BackendConfig()


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"backend": {"quantization": "3bit"}}', "quantization"),
        ('{"studio": {"port": 70000}}', "port"),
        ('{"knowledge": {"top_k": -1}}', "top_k"),
        ('{"backend": {"flavour": "x"}}', "unknown keys"),
        ('{"backend": 3}', "JSON object"),
        ("not json", "not valid JSON"),
    ],
)
def test_bad_config_is_refused_clearly(text, message):
    with pytest.raises(UserError, match=message):
        AppConfig.from_json(text)


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        AppConfig().studio.port = 1  # type: ignore[misc]


def test_the_embedded_model_gets_its_trained_defaults_and_real_models_keep_mmad_defaults():
    from reason_iad.config import with_model_defaults

    embedded = with_model_defaults(AppConfig())
    assert (embedded.reasoning.readout, embedded.reasoning.evidence, embedded.reasoning.injection_prior) == (
        "likelihood",
        "text",
        "mix",
    )
    assert embedded.knowledge.image_embedder == "tiny_clip" and embedded.memory.enabled
    real = AppConfig(backend=BackendConfig(model="Qwen/Qwen2.5-VL-7B-Instruct"))
    assert with_model_defaults(real) == real
    assert real.reasoning.readout == "letter" and not real.memory.enabled
