"""Image slots: the patch embeddings are the ones placed in the prompt, and token boxes match the pixels."""

import pytest
import torch
from PIL import Image

from reason_iad.backends.base import Message
from reason_iad.backends.tiny import FAMILIES

SQUARE = (32, 32, 96, 64)  # x0, y0, x1, y1 of a bright square in a 128 x 96 image (token-aligned)


def _bright_square_image():
    image = Image.new("RGB", (128, 96), (0, 0, 0))
    image.paste((255, 255, 255), SQUARE)
    return image


def _overlap_fraction(boxes: torch.Tensor) -> torch.Tensor:
    x0, y0, x1, y1 = SQUARE
    w = (boxes[:, 2].clamp(max=x1) - boxes[:, 0].clamp(min=x0)).clamp(min=0)
    h = (boxes[:, 3].clamp(max=y1) - boxes[:, 1].clamp(min=y0)).clamp(min=0)
    return w * h / ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))


def _token_brightness(backend, inputs, slots) -> torch.Tensor:
    """Mean processed pixel value seen by each LLM image token, read from the processor's own output."""
    pixels = inputs["pixel_values"]
    if backend.family_spec.name == "qwen-vl":  # rows come in 2x2 merge windows, 4 rows per token
        return pixels.reshape(slots.num_tokens, -1).mean(1)
    canvas = pixels.reshape(-1, *pixels.shape[-3:])[0].mean(0)  # [H, W]
    rows, cols = slots.grid
    cells = canvas.reshape(rows, canvas.shape[0] // rows, cols, canvas.shape[1] // cols)
    return cells.mean(dim=(1, 3)).flatten()


@pytest.mark.parametrize("family", FAMILIES)
def test_patch_embeddings_are_the_ones_in_the_slots(tiny_backends, family):
    backend = tiny_backends[family]
    prefix = backend.prepare([Message("user", ("Query:", _bright_square_image(), "Any defect?"))])
    [slots] = prefix.images
    placed = prefix.embeds[0, slots.start : slots.end].float()
    assert torch.equal(placed, slots.embeddings)
    text_row = backend.embed_tokens(prefix.input_ids[0, slots.start : slots.end])
    assert not torch.allclose(placed, text_row), "slots must hold vision features, not placeholder embeddings"


@pytest.mark.parametrize("family", FAMILIES)
def test_token_boxes_locate_a_bright_square(tiny_backends, family):
    backend = tiny_backends[family]
    image = _bright_square_image()
    prefix_text, _, images = backend.render([Message("user", ("Query:", image, "Any defect?"))])
    inputs = backend.processor_inputs(prefix_text, images)
    [slots] = backend.prepare([Message("user", ("Query:", image, "Any defect?"))]).images
    assert slots.boxes.shape == (slots.num_tokens, 4)
    assert float(slots.boxes[:, 2].max()) == pytest.approx(128, abs=1) and float(slots.boxes[:, 3].max()) <= 96
    overlap = _overlap_fraction(slots.boxes)
    inside, outside = overlap >= 0.6, overlap == 0
    brightness = _token_brightness(backend, inputs, slots)
    assert inside.any() and outside.any()
    assert brightness[inside].min() > brightness[outside].max()
