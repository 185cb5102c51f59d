"""Qwen2.5-VL-7B-Instruct's exact shapes as a random-weight model built straight on a device, and NF4 replacement.

`qwen25_vl_config` gives the configuration at any depth (or `small` dry-run widths), `build_random_model` allocates
it in bf16 on the device and fills small random weights (no fp32 copy, no default initialisation), `quantize_nf4`
swaps the language model's linears for bitsandbytes NF4 layers exactly where `load_backend(quantization="4bit")`
would. Used by `reason-iad bench gpu` and the real-shape rehearsal tests.
"""

from __future__ import annotations

import torch

from reason_iad.backends.families import QWEN

QWEN25_VL_7B_TEXT = dict(
    hidden_size=3584,
    intermediate_size=18944,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    hidden_act="silu",
    max_position_embeddings=128000,
    rms_norm_eps=1e-6,
    vocab_size=152064,
    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
    use_sliding_window=False,
    sliding_window=32768,
    max_window_layers=28,
    attention_dropout=0.0,
    tie_word_embeddings=False,
    initializer_range=0.02,
)
"""Qwen2.5-VL-7B-Instruct's language model (its public config.json; `rope_scaling` type mrope = default + sections)."""

QWEN25_VL_7B_VISION = dict(
    depth=32,
    hidden_size=1280,
    hidden_act="silu",
    intermediate_size=3420,
    num_heads=16,
    in_channels=3,
    out_hidden_size=3584,
    patch_size=14,
    spatial_merge_size=2,
    temporal_patch_size=2,
    window_size=112,
    fullatt_block_indexes=[7, 15, 23, 31],
    tokens_per_second=2,
    initializer_range=0.02,
)
"""Qwen2.5-VL-7B-Instruct's vision tower."""

QWEN25_VL_IMAGE_PROCESSOR = dict(
    min_pixels=3136,
    max_pixels=12845056,
    patch_size=14,
    merge_size=2,
    temporal_patch_size=2,
    image_mean=[0.48145466, 0.4578275, 0.40821073],
    image_std=[0.26862954, 0.26130258, 0.27577711],
)
"""Qwen2.5-VL's preprocessor_config.json (CLIP mean/std)."""

DRY_RUN_TEXT = dict(
    hidden_size=64,
    intermediate_size=128,
    num_attention_heads=4,
    num_key_value_heads=2,
    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [4, 2, 2]},
)
DRY_RUN_VISION = dict(hidden_size=32, intermediate_size=64, num_heads=4, out_hidden_size=64)


def full_attention_blocks(depth: int) -> list[int]:
    """Qwen2.5-VL's full-attention vision blocks (every 8th, 7/15/23/31 at depth 32); the last one when shallower."""
    return [i for i in range(depth) if (i + 1) % 8 == 0] or [depth - 1]


def qwen25_vl_config(
    token_ids: dict[str, int],
    text_layers: int = 28,
    vision_depth: int = 32,
    small: bool = False,
    vocab_size: int | None = None,
):
    """A `Qwen2_5_VLConfig` with 7B's shapes (or `small` widths), the given depths and special-token ids.

    `token_ids` maps image/video/vision_start/vision_end/bos/eos/pad to the tokenizer's ids (`*_token_id` keys).
    """
    from transformers import Qwen2_5_VLConfig

    text = (
        QWEN25_VL_7B_TEXT
        | (DRY_RUN_TEXT if small else {})
        | {"num_hidden_layers": text_layers, "max_window_layers": text_layers}
    )
    if vocab_size is not None:
        text["vocab_size"] = vocab_size
    text |= {k: token_ids[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id") if k in token_ids}
    vision = (
        QWEN25_VL_7B_VISION
        | (DRY_RUN_VISION if small else {})
        | {"depth": vision_depth, "fullatt_block_indexes": full_attention_blocks(vision_depth)}
    )
    if small:
        vision["out_hidden_size"] = text["hidden_size"]
    return Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        tie_word_embeddings=False,
        **{
            k: token_ids[k]
            for k in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
        },
    )


@torch.no_grad()
def build_random_model(
    config, device: str = "cpu", dtype: torch.dtype = torch.bfloat16, seed: int = 0, std: float = 0.02
):
    """`Qwen2_5_VLForConditionalGeneration` allocated straight on `device` in `dtype`, filled with N(0, std) weights.

    No default initialisation runs and nothing is built in fp32: memory is the model's size in `dtype`. Norm
    scales are ones and biases zeros, so activations stay in a sensible range at every depth.
    """
    from transformers import Qwen2_5_VLForConditionalGeneration
    from transformers.initialization import no_init_weights

    with torch.device(device), no_init_weights():
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
    generator = torch.Generator(device=device).manual_seed(seed)
    for name, parameter in model.named_parameters():
        if name.endswith("bias"):
            parameter.zero_()
        else:
            parameter.normal_(0.0, std, generator=generator)
    for module in model.modules():
        if "Norm" in type(module).__name__ and getattr(module, "weight", None) is not None:
            module.weight.fill_(1.0)  # RMSNorm / LayerNorm scales (the merger's ln_q too)
    return model.requires_grad_(False).eval()


def quantize_nf4(model, skip: tuple[str, ...] = QWEN.vision_modules, compute_dtype=torch.bfloat16) -> int:
    """Replace every `nn.Linear` outside the `skip` module prefixes by a bitsandbytes NF4 `Linear4bit`, in place.

    The same layers `load_backend(quantization="4bit")` quantises (double quant, `compute_dtype` compute), layer by
    layer on the weights' device, so the peak stays one layer above the quantised size. Returns the count.
    """
    import bitsandbytes as bnb

    def skipped(name: str) -> bool:
        return any(name == s or name.startswith(s + ".") for s in skip)

    targets = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and not skipped(n)]
    for name in targets:  # names only: each bf16 weight is freed as soon as its layer is replaced
        parent_name, _, child = name.rpartition(".")
        linear = model.get_submodule(name)
        layer = bnb.nn.Linear4bit(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            compute_dtype=compute_dtype,
            quant_type="nf4",
            device="meta",
        )
        layer.weight = bnb.nn.Params4bit(
            linear.weight.data, requires_grad=False, compress_statistics=True, quant_type="nf4", module=layer
        ).to(linear.weight.device)
        if linear.bias is not None:
            layer.bias = linear.bias
        setattr(model.get_submodule(parent_name), child, layer)
    for layer in model.modules():
        if isinstance(layer, bnb.nn.Linear4bit):
            layer.support_avx512bf16_for_cpu = False  # as `load_backend` does (CPU dry runs)
    return len(targets)


def shape_processor(path: str | None = None):
    """A saved processor (`path`: e.g. a real Qwen2.5-VL folder), else a stand-in with Qwen2.5-VL's image settings.

    The stand-in uses the project's small BPE tokenizer: text token counts differ from Qwen's, image tokens agree.
    """
    import transformers as tf

    if path:
        return tf.AutoProcessor.from_pretrained(path, local_files_only=True)
    from reason_iad.backends.tiny import CHAT_TEMPLATE, IMAGE_PLACEHOLDERS, build_tokenizer

    image_processor = tf.Qwen2VLImageProcessorPil(**QWEN25_VL_IMAGE_PROCESSOR)
    video_processor = tf.Qwen2VLVideoProcessor(patch_size=14, merge_size=2, temporal_patch_size=2)
    template = CHAT_TEMPLATE.replace("IMAGE_PLACEHOLDER", IMAGE_PLACEHOLDERS["qwen2_5_vl"])
    return tf.Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=build_tokenizer(),
        video_processor=video_processor,
        chat_template=template,
    )


def token_ids(tokenizer) -> dict[str, int]:
    """The config's special-token ids as this tokenizer spells them."""
    ids = tokenizer.convert_tokens_to_ids
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else ids("<|endoftext|>")
    return {
        "image_token_id": ids("<|image_pad|>"),
        "video_token_id": ids("<|video_pad|>"),
        "vision_start_token_id": ids("<|vision_start|>"),
        "vision_end_token_id": ids("<|vision_end|>"),
        "eos_token_id": ids("<|im_end|>"),
        "bos_token_id": ids("<|endoftext|>"),
        "pad_token_id": pad,
    }
