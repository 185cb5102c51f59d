"""The embedded default model: until the trained demonstration model ships, a tiny random-weight stand-in.

The stand-in is a real Qwen2.5-VL-class model built offline from a fixed config and seed; its answers are
meaningless and every output that names the model says so.
"""

from __future__ import annotations

from reason_iad.backends.tiny import TEST_SIZE, build_tiny_model
from reason_iad.backends.transformers_backend import TransformersBackend
from reason_iad.config import BackendConfig

STAND_IN_NAME = "embedded (untrained random-weight Qwen2.5-VL stand-in; answers are not meaningful)"


def load_embedded(config: BackendConfig) -> TransformersBackend:
    """The tiny random-weight Qwen2.5-VL stand-in, deterministic (seed 0), on the CPU in fp32."""
    model, processor = build_tiny_model("qwen2_5_vl", TEST_SIZE, seed=0)
    return TransformersBackend(model, processor, name=STAND_IN_NAME, quantization="none")
