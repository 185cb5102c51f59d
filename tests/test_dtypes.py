"""bf16 and 4-bit NF4 on the CPU: every mode of every family through `Pipeline.inspect`, the visual-memory prior
included, with answers close to fp32's. Catches dtype mismatches without a GPU; the `gpu` variant runs the same
matrix on CUDA."""

import dataclasses

import pytest
import torch

from knowledge_helpers import make_store
from reason_iad.backends.loading import load_backend
from reason_iad.backends.tiny import FAMILIES
from reason_iad.config import AppConfig, BackendConfig, ReasoningConfig
from reason_iad.pipeline import Pipeline

FAST = ReasoningConfig(
    num_latent_tokens=2, num_steps=2, patches_per_step=2, patch_budget=4, evidence="text", injection_prior="mix"
)
VARIANTS = {"bf16": {"dtype": "bfloat16"}, "4bit": {"quantization": "4bit"}}


@pytest.fixture(scope="module")
def memory_and_images(tmp_path_factory):
    from reason_iad.config import MemoryConfig
    from reason_iad.memory import open_memory
    from reason_iad.synth import render_sample

    root = tmp_path_factory.mktemp("dtypes")
    memory = open_memory(root / "memory", MemoryConfig(enabled=True))
    memory.add_exemplars("Test", "wood", [render_sample("wood", None, 100 + i, 128).image for i in range(4)])
    return root, memory, render_sample("wood", "hole", 5, 128).image, render_sample("wood", None, 99, 128).image


def _pipeline(backend, memory_and_images, name):
    root, memory, _, _ = memory_and_images
    return Pipeline(backend, AppConfig(reasoning=FAST), make_store(root / f"kb-{name}"), memory=memory)


def _inspect(pipeline, images, mode):
    _, _, defective, template = images
    return pipeline.inspect(
        defective, category="wood", template=template, reasoning=dataclasses.replace(FAST, mode=mode)
    )


def _check_matrix(family, variant, device, tiny_model_dirs, tiny_backends, memory_and_images):
    config = BackendConfig(model=str(tiny_model_dirs[family]), device=device, **VARIANTS[variant])
    backend = load_backend(config)
    if variant == "bf16":
        assert backend.dtype == torch.bfloat16
    pipeline = _pipeline(backend, memory_and_images, f"{family}-{variant}")
    reference = _pipeline(tiny_backends[family], memory_and_images, f"{family}-fp32")
    for mode in ("plain", "knowledge", "latent", "full"):
        inspection = _inspect(pipeline, memory_and_images, mode)
        assert sum(inspection.option_probs.values()) == pytest.approx(1.0, abs=1e-4)
        assert all(0.0 <= p <= 1.0 for p in inspection.option_probs.values())
        assert inspection.anomaly is not None and inspection.anomaly.shown_as == "text"
        if mode in ("latent", "full"):
            assert len(inspection.steps) == FAST.num_steps
            assert all(torch.isfinite(torch.tensor(s.reward)) for s in inspection.steps)
            assert {s.prior for s in inspection.steps} == {"mix"}  # the memory's prior reached the engine
            assert len(inspection.injected) <= FAST.patch_budget
        else:  # no latent search: the answer distribution is the model's, so it must stay close to fp32's
            expected = _inspect(reference, memory_and_images, mode).option_probs
            tolerance = 0.05 if variant == "bf16" else 0.15
            assert inspection.option_probs == pytest.approx(expected, abs=tolerance), (mode, expected)


@pytest.mark.parametrize("variant", ["bf16", "4bit"])
def test_qwen_every_mode_in_bf16_and_4bit(variant, tiny_model_dirs, tiny_backends, memory_and_images):
    _check_matrix("qwen2_5_vl", variant, "cpu", tiny_model_dirs, tiny_backends, memory_and_images)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["bf16", "4bit"])
@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "qwen2_5_vl"])
def test_every_family_every_mode_in_bf16_and_4bit(family, variant, tiny_model_dirs, tiny_backends, memory_and_images):
    _check_matrix(family, variant, "cpu", tiny_model_dirs, tiny_backends, memory_and_images)


@pytest.mark.gpu
@pytest.mark.parametrize("variant", ["bf16", "4bit"])
@pytest.mark.parametrize("family", FAMILIES)
def test_gpu_every_family_every_mode(family, variant, tiny_model_dirs, tiny_backends, memory_and_images):
    if variant == "4bit":
        pytest.importorskip("bitsandbytes", reason="4-bit needs bitsandbytes on the GPU machine")
    _check_matrix(family, variant, "cuda", tiny_model_dirs, tiny_backends, memory_and_images)
