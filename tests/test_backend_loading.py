"""Loading: 4-bit NF4 on the CPU, and fast, clear errors for models that cannot be loaded."""

import json
import time

import pytest
import torch

from backend_helpers import two_image_messages
from reason_iad.backends.loading import load_backend
from reason_iad.config import BackendConfig
from reason_iad.errors import UserError


@pytest.fixture(scope="module")
def four_bit(tiny_model_dirs):
    return load_backend(BackendConfig(model=str(tiny_model_dirs["qwen2_5_vl"]), quantization="4bit", device="cpu"))


def test_4bit_quantises_the_language_model_only(four_bit):
    import bitsandbytes as bnb

    quantised = [name for name, m in four_bit.model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantised and all(".language_model." in name for name in quantised)
    assert all(
        layer.support_avx512bf16_for_cpu is False
        for layer in four_bit.model.modules()
        if isinstance(layer, bnb.nn.Linear4bit)
    )


def test_4bit_forward_matches_fp32_closely(four_bit, tiny_backends):
    messages = two_image_messages()
    full = tiny_backends["qwen2_5_vl"]
    with torch.no_grad():
        full_prefix = full.prepare(messages)
        reference = full.suffix_forward(full_prefix, full.embed_tokens(full_prefix.assistant_header_ids)[None])
        prefix = four_bit.prepare(messages)
        quantised = four_bit.suffix_forward(prefix, four_bit.embed_tokens(prefix.assistant_header_ids)[None])
    cosine = torch.nn.functional.cosine_similarity(reference.logits.flatten(), quantised.logits.flatten(), dim=0)
    print(f"4-bit vs fp32 logits cosine: {cosine:.4f}")
    assert cosine > 0.9


def test_4bit_gradients_reach_suffix_embeddings_after_a_no_grad_pass(four_bit):
    prefix = four_bit.prepare(two_image_messages())  # a no-grad pass: the repack trigger on AVX512-BF16 CPUs
    latents = (four_bit.embed_tokens(prefix.assistant_header_ids)[None]).clone().requires_grad_(True)
    logits = four_bit.suffix_forward(prefix, latents).logits
    torch.log_softmax(logits[0, -1], -1).max().backward()
    assert latents.grad is not None and torch.isfinite(latents.grad).all() and latents.grad.abs().sum() > 0


def test_missing_folder_fails_fast_and_clearly(tmp_path):
    started = time.monotonic()
    with pytest.raises(UserError, match="neither a local folder nor in the local Hugging Face cache"):
        load_backend(BackendConfig(model=str(tmp_path / "no-such-model")))
    assert time.monotonic() - started < 10


def test_hub_id_while_offline_names_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="hf download Qwen/Qwen2.5-VL-7B-Instruct"):
        load_backend(BackendConfig(model="Qwen/Qwen2.5-VL-7B-Instruct"))


def test_unsupported_architecture_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    with pytest.raises(UserError, match="unsupported architecture 'bert'.*qwen2_5_vl"):
        load_backend(BackendConfig(model=str(tmp_path)))


def test_folder_without_config_is_refused(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(UserError, match="not a Hugging Face model folder"):
        load_backend(BackendConfig(model=str(tmp_path)))


def test_cuda_without_gpu_is_refused(tiny_model_dirs):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(UserError, match="no CUDA GPU"):
        load_backend(BackendConfig(model=str(tiny_model_dirs["llava"]), device="cuda"))
