"""Prompts and references shared by the backend and engine tests (fixtures live in conftest.py)."""

import torch
from PIL import Image

from reason_iad.backends.base import Message


def two_image_messages(size=(96, 72)):
    """A one-shot style prompt: a template image and a query image."""
    template = Image.new("RGB", size, (90, 90, 90))
    query = Image.new("RGB", size, (90, 90, 90))
    query.paste((250, 250, 250), (10, 10, 30, 30))
    return [Message("user", ("Template:", template, "Following is the query image:", query, "Is there any defect?"))]


def full_sequence_logits(backend, messages, suffix_text_ids):
    """Reference: the model's own forward over prefix + suffix tokens with pixel inputs (no cache tricks)."""
    prefix_text, header_text, images = backend.render(messages)
    inputs = backend.processor_inputs(prefix_text + header_text, images)
    with torch.no_grad():
        return inputs, backend.model(**inputs).logits[0].float()
