"""The embedded default model: the tiny Qwen2.5-VL-class inspector trained on SynthIAD, shipped in the repo.

`load_embedded` opens `reason_iad/assets/inspector/` offline (fp16 weights, loaded in the configured dtype on the
configured device: fp32 on the CPU and bf16 on a GPU by default, like any other model). If the assets are missing
(a stripped checkout), it falls back to an untrained random-weight stand-in of the same
class, and every output that names the model says so.
"""

from __future__ import annotations

from pathlib import Path

from reason_iad.backends.tiny import TEST_SIZE, build_tiny_model
from reason_iad.backends.transformers_backend import TransformersBackend
from reason_iad.config import BackendConfig

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
INSPECTOR_DIR = ASSETS_DIR / "inspector"
CLIP_DIR = ASSETS_DIR / "clip"
EMBEDDED_NAME = (
    "embedded (small demonstration model: tiny Qwen2.5-VL-class inspector trained on synthetic SynthIAD data; "
    "use --model for a real one)"
)
STAND_IN_NAME = "embedded (untrained random-weight Qwen2.5-VL stand-in; answers are not meaningful)"
PREFERRED_READOUT = "likelihood"
"""The read-out the inspector was trained for: option-phrase likelihood (it never learned letters)."""


def inspector_available(folder: Path = INSPECTOR_DIR) -> bool:
    """True when the trained inspector's config and weights are present."""
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def load_inspector(
    folder: Path = INSPECTOR_DIR, name: str = EMBEDDED_NAME, device: str = "cpu", dtype=None
) -> TransformersBackend:
    """The trained inspector from `folder`, offline, on `device` in `dtype` (default fp32)."""
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        folder, dtype=dtype or torch.float32, local_files_only=True
    ).to(device)
    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    return TransformersBackend(model, processor, name=name, quantization="none")


def load_embedded(config: BackendConfig) -> TransformersBackend:
    """The shipped trained inspector; the random-weight stand-in (seed 0) only when the assets are missing.

    `config.device` and `config.dtype` are honoured (`auto`: CUDA in bf16 when visible, else the CPU in fp32).
    Quantisation is not offered for a 6 M-parameter model and is refused.
    """
    from reason_iad.backends.devices import resolve_device, resolve_dtype
    from reason_iad.errors import UserError

    if config.quantization != "none":
        raise UserError("the embedded model is too small to quantise: use --quantization none (the default)")
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    if inspector_available():
        return load_inspector(device=device, dtype=dtype)
    model, processor = build_tiny_model("qwen2_5_vl", TEST_SIZE, seed=0)
    return TransformersBackend(model.to(device, dtype), processor, name=STAND_IN_NAME, quantization="none")
