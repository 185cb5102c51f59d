"""What one inspection is asked to do (`InspectionRequest`), and where the query sits in the prompt."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image

from reason_iad.errors import UserError
from reason_iad.reasoning.prompt import Question


@dataclass(frozen=True)
class InspectionRequest:
    """One question about one image, with what the caller chose to put in the prompt."""

    image: Image.Image
    question: Question
    template: Image.Image | None = None
    category: str | None = None
    knowledge: tuple[str, ...] = ()
    evidence: str = ""  # the visual memory's evidence line for the prompt (see `build_messages`)
    patch_prior: Callable[[torch.Tensor], torch.Tensor] | None = None  # token boxes [n, 4] -> anomaly per token [n]


RATIONALE_TURN_POSITIONS = 96
"""Positions reserved for the answer turn and the follow-up question before the explanation."""
NO_EVIDENCE_PRIOR = "attention (no visual-memory evidence for the anomaly prior)"
"""The prior recorded when `anomaly`/`mix` was asked for but there was no evidence to build it from."""


def query_index(messages, query: Image.Image) -> int:
    """Position of the query among the prompt's images (in prompt order, as the backend lays them out)."""
    images = [part for message in messages for part in message.parts if isinstance(part, Image.Image)]
    found = [i for i, image in enumerate(images) if image is query]
    if not found:
        raise UserError("the prompt does not contain the query image")
    return found[-1]
