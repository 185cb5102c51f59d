"""Rehearsal at Qwen2.5-VL-7B-Instruct's real shapes: real tokenizer, real processor, bf16 and 4-bit through the engine.

The model folder (tests/real_shape.py: exact 7B configuration, 2 language layers, 2 vision blocks, random bf16
weights, about 3 GiB) is written once per session by a subprocess, then opened with `load_backend` exactly as a
downloaded checkpoint would be. Slow: about 5-6 minutes on a 2-core CPU without AVX512-BF16 (bf16 matrix products
run there at about 4 GFLOP/s).
"""

import gc
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import real_shape
from reason_iad.backends import families
from reason_iad.backends.base import Message
from reason_iad.backends.loading import load_backend, quantization_config
from reason_iad.config import BackendConfig, ReasoningConfig
from reason_iad.reasoning.engine import InspectionRequest, Reasoner
from reason_iad.reasoning.prompt import Question, build_messages

pytestmark = pytest.mark.slow

LETTERS = ("A", "B", "C", "D", "E")
KNOWLEDGE = ("Scratch: a thin dark line across the surface.", "Good: an even, clean surface with sharp print.")
QUESTION = Question(
    "What is the type of the defect?",
    (("A", "Scratch."), ("B", "Crack."), ("C", "Stain."), ("D", "Bent."), ("E", "None.")),
)


def _images():
    template = Image.new("RGB", (84, 84), (128, 124, 118))  # -> 6x6 patches, 3x3 tokens
    query = Image.new("RGB", (140, 98), (128, 124, 118))  # non-square -> 8x10 patches, 4x5 tokens
    query.paste((30, 30, 30), (40, 20, 46, 80))
    return query, template


@pytest.fixture(scope="session")
def real_shape_dir(tmp_path_factory):
    """The model folder, written by a subprocess (its ~4 GiB build peak never counts against the tests)."""
    folder = tmp_path_factory.mktemp("real-shape-qwen") / "qwen2_5_vl_7b_shape"
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    script = Path(real_shape.__file__)
    subprocess.run([sys.executable, str(script), str(folder)], check=True, env=env, cwd=script.parents[1])
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def backend_for(real_shape_dir):
    """`load_backend` on the folder in bf16 (quantization none or 4bit); one model in memory at a time."""
    loaded = {}

    def get(quantization: str):
        if quantization not in loaded:
            loaded.clear()
            gc.collect()
            real_shape.reset_peak_rss()
            config = BackendConfig(model=str(real_shape_dir), device="cpu", dtype="bfloat16", quantization=quantization)
            loaded[quantization] = load_backend(config)
        return loaded[quantization]

    yield get
    loaded.clear()
    gc.collect()


def test_real_shape_tokenizer_letters(backend_for):
    backend = backend_for("none")
    _, header, _ = backend.render(build_messages(QUESTION, *_images(), knowledge=KNOWLEDGE))
    header_ids = backend.encode_text(header)
    assert header_ids == [151645, 198, 151644, 77091, 198]  # <|im_end|> \n <|im_start|> assistant \n
    letter_ids = backend.first_token_ids(LETTERS)
    assert len(set(letter_ids)) == len(LETTERS)
    for letter, token in zip(LETTERS, letter_ids, strict=True):
        assert backend.encode_text(letter) == [token]
        assert backend.encode_text(header + letter) == header_ids + [token]  # a single token after the header
    reference = real_shape.reference_encoder()
    for text in ("Is there any defect in the object?\nA. Yes.\nB. No.", "Ölfleck 3×4 mm — 划痕 near the edge."):
        ids = backend.encode_text(text)
        assert ids == reference.encode(text)
        assert backend.tokenizer.decode(ids) == text


def _image_runs(input_ids: torch.Tensor, image_token_id: int) -> list[int]:
    flags = (input_ids[0] == image_token_id).tolist() + [False]
    runs, length = [], 0
    for flag in flags:
        if flag:
            length += 1
        elif length:
            runs, length = runs + [length], 0
    return runs


def test_real_shape_image_tokens_match_grid(backend_for):
    backend = backend_for("none")
    query, template = _images()
    merge = backend.processor.image_processor.merge_size
    assert merge == 2 and backend.model.config.image_token_id == 151655
    prompt, _, images = backend.render(build_messages(QUESTION, query, template, KNOWLEDGE))  # the engine's prompt
    inputs = backend.processor_inputs(prompt, images)
    grids = [tuple(int(v) for v in g) for g in inputs["image_grid_thw"]]
    assert grids == [(1, 6, 6), (1, 8, 10)]  # template, then query
    expected = [t * h * w // merge**2 for t, h, w in grids]
    assert _image_runs(inputs["input_ids"], 151655) == expected == [9, 20]
    prefix = backend.prepare([Message("user", ("Template:", template, "Query:", query, "Any defect?"))])
    assert [slot.num_tokens for slot in prefix.images] == expected
    assert [slot.grid for slot in prefix.images] == [(h // merge, w // merge) for _, h, w in grids]
    assert [slot.image_size for slot in prefix.images] == [template.size, query.size]
    assert all(slot.embeddings.shape == (n, 3584) for slot, n in zip(prefix.images, expected, strict=True))


def test_real_shape_bf16_full_inspection(backend_for):
    backend = backend_for("none")
    assert backend.dtype == torch.bfloat16
    assert {p.dtype for p in backend.model.parameters()} == {torch.bfloat16}
    _full_inspection(backend, "bf16")


def test_real_shape_4bit_skip_list_matches_modules(backend_for):
    import bitsandbytes as bnb

    backend = backend_for("4bit")
    skip = quantization_config("4bit", families.QWEN, torch.bfloat16).llm_int8_skip_modules
    assert list(skip) == list(families.QWEN.vision_modules)
    modules = dict(backend.model.named_modules())
    for prefix in skip:
        assert any(name == prefix or name.startswith(prefix + ".") for name in modules), prefix
    vision = [m for n, m in modules.items() if n.startswith("model.visual.") and isinstance(m, torch.nn.Linear)]
    language = [
        m for n, m in modules.items() if n.startswith("model.language_model.layers.") and isinstance(m, torch.nn.Linear)
    ]
    assert len(vision) == 2 * 5 + 2 and len(language) == 2 * 7  # qkv, proj, 3 MLP per block + merger; 7 per layer
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in vision)
    assert all(isinstance(m, bnb.nn.Linear4bit) for m in language)
    assert not isinstance(modules["lm_head"], bnb.nn.Linear4bit)
    assert all(m.support_avx512bf16_for_cpu is False for m in language)


def test_real_shape_4bit_full_inspection(backend_for):
    _full_inspection(backend_for("4bit"), "4bit")


def _full_inspection(backend, label: str) -> None:
    query, template = _images()
    config = ReasoningConfig(
        mode="full", readout="letter", num_steps=2, num_latent_tokens=2, num_noise_pairs=1, max_new_tokens=1
    )
    request = InspectionRequest(query, QUESTION, template, category="metal_plate", knowledge=KNOWLEDGE)
    inspection = Reasoner(backend, config).run(request)
    rss = real_shape.rss_gib()
    print(
        f"\n[real-shape {label}] prefix {inspection.timings.prefix_ms / 1000:.1f} s, mean step "
        f"{inspection.timings.mean_step_ms / 1000:.1f} s, decode {inspection.timings.decode_ms / 1000:.1f} s; "
        f"RSS {rss['VmRSS']:.2f} GiB (anonymous {rss['RssAnon']:.2f}, file-backed {rss['RssFile']:.2f}), "
        f"peak RSS since load {rss['VmHWM']:.2f} GiB"
    )
    assert inspection.answer in LETTERS and inspection.mode == "full"
    assert set(inspection.option_probs) == set(LETTERS)
    assert math.isclose(sum(inspection.option_probs.values()), 1.0, abs_tol=1e-4)
    assert [s.step for s in inspection.steps] == [1, 2]
    for step in inspection.steps:
        assert math.isfinite(step.reward) and all(math.isfinite(v) for v in step.reward_components.values())
        assert {"answer", "latent"} <= set(step.reward_components)
        assert math.isclose(sum(step.option_probs.values()), 1.0, abs_tol=1e-4)
        assert len(step.latent_entropy) == 2 and all(0.0 <= e <= 1.0 + 1e-6 for e in step.latent_entropy)
    assert inspection.attention_map and len(inspection.attention_map) == 4  # the query's 4x5 token grid
