"""`load_backend(config)`: a local folder or a Hugging Face id -> a ready `TransformersBackend`.

Offline (`HF_HUB_OFFLINE=1`) or for a folder, nothing touches the network; a missing model, an unsupported
architecture or a hub id while offline fails within seconds with one message that says what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

from reason_iad.backends import families
from reason_iad.backends.devices import resolve_device, resolve_dtype
from reason_iad.backends.transformers_backend import TransformersBackend
from reason_iad.config import DEFAULT_MODEL, BackendConfig
from reason_iad.errors import UserError


def hub_offline() -> bool:
    """True when the environment forbids hub access."""
    flags = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in flags)


def _read_model_type(source: str, local_only: bool) -> str:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source, local_files_only=local_only).model_type
    except (OSError, ValueError) as err:
        if Path(source).exists():
            raise UserError(f"{source} is not a Hugging Face model folder (no readable config.json): {err}") from err
        if local_only:
            raise UserError(
                f"model {source!r} is neither a local folder nor in the local Hugging Face cache, and the hub is "
                "offline (HF_HUB_OFFLINE=1). Download it where the hub is reachable "
                f"(`hf download {source}`) or pass --model /path/to/folder."
            ) from err
        raise UserError(f"cannot load model {source!r}: {err}") from err


def quantization_config(kind: str, family: families.Family, compute_dtype):
    """`BitsAndBytesConfig` for 4-bit NF4 (double quant) or 8-bit, vision tower and lm_head kept unquantised."""
    if kind == "none":
        return None
    try:
        from transformers import BitsAndBytesConfig
    except ImportError as err:  # pragma: no cover - transformers is pinned
        raise UserError("quantization needs transformers with bitsandbytes: pip install bitsandbytes") from err
    skip = list(family.vision_modules)
    if kind == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype,
            llm_int8_skip_modules=skip,
        )
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)


def disable_avx512bf16_repack(model) -> int:
    """Keep bitsandbytes 4-bit layers usable for gradients after a no-grad pass on AVX512-BF16 CPUs.

    Without this, the first no-grad forward repacks weights into an inference-only layout and every later
    forward that needs input gradients fails. Applied unconditionally; returns the number of layers touched.
    """
    import bitsandbytes as bnb

    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    for layer in layers:
        layer.support_avx512bf16_for_cpu = False
    return len(layers)


def load_backend(config: BackendConfig) -> TransformersBackend:
    """Load the model and processor named by `config` (folder or hub id) behind the `Backend` interface."""
    if config.model == DEFAULT_MODEL:
        from reason_iad.backends.embedded import load_embedded

        return load_embedded(config)
    source = str(Path(config.model).expanduser()) if Path(config.model).expanduser().exists() else config.model
    local_only = hub_offline() or Path(source).exists()
    try:
        family = families.family_for(_read_model_type(source, local_only))
    except ValueError as err:
        raise UserError(f"{source}: {err}") from err
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(
        source,
        dtype=dtype,
        local_files_only=local_only,
        device_map=device,
        quantization_config=quantization_config(config.quantization, family, dtype),
    )
    if config.quantization == "4bit":
        disable_avx512bf16_repack(model)
    processor = AutoProcessor.from_pretrained(source, local_files_only=local_only)
    if getattr(processor.image_processor, "do_image_splitting", False):
        processor.image_processor.do_image_splitting = False  # one global view per image: one run of tokens
    return TransformersBackend(model, processor, name=config.model, quantization=config.quantization)
