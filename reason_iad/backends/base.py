"""The narrow interface between the reasoning engine and a multimodal LLM, and its typed values.

A backend turns chat messages (text and images) into a `Prefix` computed once (merged embeddings, model-correct
positions, KV cache, image slots with their patch embeddings and pixel boxes), then runs cheap *suffix*
forwards against that cache: latents, injected patches and the assistant header, batched over candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from PIL import Image


@dataclass(frozen=True)
class Message:
    """One chat turn: a role and an ordered mix of text and images."""

    role: str
    parts: tuple[str | Image.Image, ...]


@dataclass(frozen=True)
class ImageSlots:
    """Where one image sits in the prefix and what fills it."""

    start: int  # first image token position in the prefix
    end: int  # one past the last
    embeddings: torch.Tensor  # [n, D] projected vision features scattered into the slots (fp32)
    boxes: torch.Tensor  # [n, 4] pixel box (x0, y0, x1, y1) of each token in the original image
    grid: tuple[int, int]  # token rows, cols
    image_size: tuple[int, int]  # original width, height

    @property
    def num_tokens(self) -> int:
        """Number of LLM tokens this image occupies."""
        return self.end - self.start


@dataclass
class Prefix:
    """Everything before the latent slots, computed once and never mutated afterwards."""

    input_ids: torch.Tensor  # [1, P]
    embeds: torch.Tensor  # [1, P, D] merged text + vision embeddings, model dtype
    position_ids: torch.Tensor  # [3, 1, P] (M-RoPE) or [1, P]
    cache: Any  # transformers DynamicCache holding the prefix keys/values (read only)
    images: tuple[ImageSlots, ...]
    next_position: int  # text position of the first suffix token
    assistant_header_ids: torch.Tensor  # [H] tokens closing the user turn and opening the assistant turn
    last_logits: torch.Tensor  # [V] next-token logits at the last prefix position (fp32)

    @property
    def length(self) -> int:
        """Prefix length P in tokens."""
        return int(self.input_ids.shape[1])


@dataclass(frozen=True)
class SuffixOutput:
    """What a batched suffix forward returns."""

    logits: torch.Tensor  # [K, V] fp32 at the requested (row, position) pairs; [B, S, V] when all were asked for
    hidden: torch.Tensor | None  # [S, D] last-layer hidden states of row 0 (fp32) when requested
    image_attention: torch.Tensor | None  # [R, n] attention of row 0's requested positions over one image's tokens


class Backend(Protocol):
    """What the reasoning engine needs from a multimodal LLM."""

    name: str
    family: str
    hidden_size: int
    max_context: int  # positions the language model supports
    embedding_rms: float
    latent_token_id: int
    device: torch.device  # where the model's embeddings live: every tensor the engine makes goes there
    end_token_ids: set[int]

    def prepare(self, messages: Sequence[Message], reserve: int = 0) -> Prefix:
        """Run the prefix (all messages up to the end of the last user turn's content) once.

        Refuses (`UserError`, before any forward) a prompt that leaves fewer than `reserve` positions after it.
        """
        ...

    def embed_tokens(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Token ids [...] -> input embeddings [..., D] (fp32)."""
        ...

    def suffix_forward(
        self,
        prefix: Prefix,
        suffix_embeds: torch.Tensor,
        logit_positions: Sequence[tuple[int, int]] | None = None,
        attention_rows: Sequence[int] | None = None,
        image_index: int = -1,
        output_hidden: bool = False,
    ) -> SuffixOutput:
        """Suffix embeddings [B, S, D] against the (expanded, untouched) prefix cache.

        Logits only at `logit_positions` (row, position) pairs (None: all); attention rows and hidden states of
        row 0 only, over the image `image_index` of the prefix.
        """
        ...

    def generate(self, prefix: Prefix, suffix_embeds: torch.Tensor, max_new_tokens: int = 64, min_new_tokens: int = 0):
        """Greedy decoding after prefix + suffix [1, S, D] -> `Generation`; stops at the end-of-turn token."""
        ...

    def first_token_ids(self, texts: Sequence[str]) -> list[int]:
        """The first token id of each text as the assistant would start it (option letters, phrases)."""
        ...

    def encode_text(self, text: str) -> list[int]:
        """Token ids of plain text (no special tokens added)."""
        ...

    def followup_ids(self, answer: str, question: str) -> list[int]:
        """Tokens after the latent slots for a follow-up question, in the model's chat template.

        The assistant header, `answer` as the assistant's turn, a user turn asking `question`, a new header.
        """
        ...
