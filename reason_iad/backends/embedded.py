"""The embedded default model: the tiny Qwen2.5-VL-class inspector trained on SynthIAD, shipped in the repo.

`load_embedded` opens `reason_iad/assets/inspector/` offline (fp16 weights, loaded as fp32 on the CPU). If the
assets are missing (a stripped checkout), it falls back to an untrained random-weight stand-in of the same
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


def load_inspector(folder: Path = INSPECTOR_DIR, name: str = EMBEDDED_NAME) -> TransformersBackend:
    """The trained inspector from `folder`, offline, fp32 on the CPU."""
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    return TransformersBackend(model, processor, name=name, quantization="none")


def load_embedded(config: BackendConfig) -> TransformersBackend:
    """The shipped trained inspector; the random-weight stand-in (seed 0) only when the assets are missing."""
    if inspector_available():
        return load_inspector()
    model, processor = build_tiny_model("qwen2_5_vl", TEST_SIZE, seed=0)
    return TransformersBackend(model, processor, name=STAND_IN_NAME, quantization="none")
