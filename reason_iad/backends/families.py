"""Per-family knowledge the generic backend needs: image features, positions, pixel geometry, vision modules.

Supported: Qwen2.5-VL and Qwen2-VL with M-RoPE positions through the
model's own rope-index function; LLaVA and Idefics3/SmolVLM with plain 1-D positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Family:
    """How one architecture family exposes its vision path."""

    name: str
    model_types: tuple[str, ...]
    image_input_keys: tuple[str, ...]
    vision_modules: tuple[str, ...]  # full module prefixes kept unquantised
    mrope: bool


QWEN = Family(
    "qwen-vl", ("qwen2_5_vl", "qwen2_vl"), ("pixel_values", "image_grid_thw"), ("model.visual", "lm_head"), mrope=True
)
LLAVA = Family(
    "llava",
    ("llava",),
    ("pixel_values", "image_sizes"),
    ("model.vision_tower", "model.multi_modal_projector", "lm_head"),
    mrope=False,
)
IDEFICS3 = Family(
    "idefics3",
    ("idefics3", "smolvlm"),
    ("pixel_values", "pixel_attention_mask"),
    ("model.vision_model", "model.connector", "lm_head"),
    mrope=False,
)
FAMILIES = (QWEN, LLAVA, IDEFICS3)
SUPPORTED_MODEL_TYPES = tuple(t for f in FAMILIES for t in f.model_types)


def family_for(model_type: str) -> Family:
    """The family of a `config.model_type`; unknown types raise `ValueError` listing the supported ones."""
    for family in FAMILIES:
        if model_type in family.model_types:
            return family
    raise ValueError(f"unsupported architecture {model_type!r}; supported: {', '.join(SUPPORTED_MODEL_TYPES)}")


def image_features(family: Family, model, inputs: dict) -> torch.Tensor:
    """Projected vision features of all images in prompt order, [n_all, D]: exactly what fills the image slots."""
    kwargs = {k: inputs[k] for k in family.image_input_keys if inputs.get(k) is not None}
    if family is LLAVA:
        kwargs |= {
            "vision_feature_layer": model.config.vision_feature_layer,
            "vision_feature_select_strategy": model.config.vision_feature_select_strategy,
        }
    pooled = model.get_image_features(**kwargs, return_dict=True).pooler_output
    if isinstance(pooled, torch.Tensor):
        return pooled.reshape(-1, pooled.shape[-1])
    return torch.cat([p.reshape(-1, p.shape[-1]) for p in pooled])


def position_ids(family: Family, model, inputs: dict) -> tuple[torch.Tensor, int]:
    """Positions of the prefix ([3, 1, P] M-RoPE or [1, P]) and the text position that follows it."""
    input_ids = inputs["input_ids"]
    if not family.mrope:
        length = input_ids.shape[1]
        return torch.arange(length, device=input_ids.device)[None], length
    positions, _ = model.model.get_rope_index(
        input_ids,
        mm_token_type_ids=inputs["mm_token_type_ids"],
        image_grid_thw=inputs.get("image_grid_thw"),
        attention_mask=inputs.get("attention_mask"),
    )
    return positions, int(positions.max()) + 1


def suffix_positions(prefix_positions: torch.Tensor, next_position: int, batch: int, length: int) -> torch.Tensor:
    """Sequential text positions for a suffix, in the layout of the prefix positions ([3, B, S] or [B, S])."""
    steps = torch.arange(next_position, next_position + length, device=prefix_positions.device)
    if prefix_positions.dim() == 3:
        return steps.view(1, 1, -1).expand(prefix_positions.shape[0], batch, length)
    return steps.view(1, -1).expand(batch, length)


def token_grid(family: Family, model, inputs: dict, index: int, num_tokens: int) -> tuple[int, int]:
    """Rows and columns of LLM tokens for image `index`."""
    if family is QWEN:
        _, h, w = (int(v) for v in inputs["image_grid_thw"][index])
        merge = model.config.vision_config.spatial_merge_size
        return h // merge, w // merge
    side = int(round(num_tokens**0.5))
    if side * side != num_tokens:
        raise ValueError(f"cannot lay {num_tokens} image tokens on a square grid")
    return side, side


Canvas = tuple[float, float, float, float, int, int]


def processed_region(family: Family, processor, inputs: dict, index: int) -> Canvas:
    """The model-side canvas: (crop_x, crop_y, scale_x, scale_y, canvas_w, canvas_h) mapping canvas -> resized image.

    For Qwen the canvas is the whole resized image; for LLaVA a center crop of the resized image may apply; for
    Idefics3 the valid (unpadded) part of the canvas is given by the pixel attention mask.
    """
    if family is QWEN:
        _, h, w = (int(v) for v in inputs["image_grid_thw"][index])
        patch = processor.image_processor.patch_size
        return 0.0, 0.0, 1.0, 1.0, w * patch, h * patch
    pixels = inputs["pixel_values"]
    height, width = int(pixels.shape[-2]), int(pixels.shape[-1])
    if family is IDEFICS3 and inputs.get("pixel_attention_mask") is not None:
        valid = inputs["pixel_attention_mask"].reshape(-1, height, width)[index]
        valid_h, valid_w = int(valid.any(1).sum()), int(valid.any(0).sum())
        return 0.0, 0.0, width / max(valid_w, 1), height / max(valid_h, 1), width, height
    return 0.0, 0.0, 1.0, 1.0, width, height


def pixel_boxes(
    grid: tuple[int, int],
    canvas: Canvas,
    image_size: tuple[int, int],
    center_crop: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Boxes [rows*cols, 4] of each token in original-image pixels (row-major token order)."""
    rows, cols = grid
    _, _, extra_x, extra_y, canvas_w, canvas_h = canvas
    width, height = image_size
    r = torch.arange(rows, dtype=torch.float32).repeat_interleave(cols)
    c = torch.arange(cols, dtype=torch.float32).repeat(rows)
    cell_w, cell_h = canvas_w / cols, canvas_h / rows
    boxes = torch.stack([c * cell_w, r * cell_h, (c + 1) * cell_w, (r + 1) * cell_h], dim=1)  # canvas px
    if center_crop is not None:  # canvas is a center crop of the image resized to its shortest edge
        scale = min(center_crop) / min(width, height)
        offset_x, offset_y = (width * scale - canvas_w) / 2, (height * scale - canvas_h) / 2
        boxes = (boxes + torch.tensor([offset_x, offset_y, offset_x, offset_y])) / scale
    else:
        boxes = boxes * torch.tensor([extra_x * width / canvas_w, extra_y * height / canvas_h] * 2)
    return boxes.clamp(min=0).minimum(torch.tensor([width, height, width, height], dtype=torch.float32))
