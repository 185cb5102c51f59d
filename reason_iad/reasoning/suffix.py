"""Suffix rows for batched evaluation, and the two answer read-outs over a batch of rows.

A row holds the latents with their injected patches, the assistant header and, for the option-likelihood
read-out, one option's tokens.
Layout of a row: [z_1, patches of z_1..., z_2, ..., z_L, patches of z_L..., header..., option tokens...].
Rows are right-padded to one length: causal attention keeps padding from touching the real positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class RowSpec:
    """What goes into one suffix row."""

    latents: torch.Tensor | None  # [L, D] fp32, None without latent reasoning
    patches: tuple[tuple[int, torch.Tensor], ...] = ()  # (latent index, patch embedding [D])
    continuation: tuple[int, ...] = ()  # token ids scored after the header (likelihood read-out)


@dataclass(frozen=True)
class RowLayout:
    """Where things sit in an assembled row."""

    latent_positions: tuple[int, ...]
    answer_position: int  # last header token: its logits predict the first answer token
    continuation: tuple[int, ...]
    length: int


def assemble_row(spec: RowSpec, header: torch.Tensor, embed) -> tuple[torch.Tensor, RowLayout]:
    """Embeddings [S, D] of one row and its layout; `embed` maps token ids [k] -> [k, D] (fp32)."""
    pieces, latent_positions, length = [], [], 0
    if spec.latents is not None:
        for index in range(spec.latents.shape[0]):
            pieces.append(spec.latents[index : index + 1])  # [1, D]
            latent_positions.append(length)
            length += 1
            attached = [p for latent, p in spec.patches if latent == index]
            if attached:
                pieces.append(torch.stack(attached))  # [m, D]
                length += len(attached)
    pieces.append(header)
    length += header.shape[0]
    answer_position = length - 1
    if spec.continuation:
        pieces.append(embed(torch.tensor(spec.continuation)))
        length += len(spec.continuation)
    layout = RowLayout(tuple(latent_positions), answer_position, spec.continuation, length)
    return torch.cat(pieces).float(), layout


def pad_rows(rows: list[torch.Tensor]) -> torch.Tensor:
    """Right-pad rows [S_i, D] with zeros into one batch [B, S_max, D]."""
    width = max(r.shape[0] for r in rows)
    return torch.stack([torch.nn.functional.pad(r, (0, 0, 0, width - r.shape[0])) for r in rows])


def letter_probs(logits: torch.Tensor, layouts: list[RowLayout], option_token_ids: torch.Tensor) -> torch.Tensor:
    """Answer distribution per row from the letter logits at its answer position: -> [B, n]."""
    answer_logits = torch.stack([logits[b, layout.answer_position] for b, layout in enumerate(layouts)])  # [B, V]
    return torch.softmax(answer_logits[:, option_token_ids], dim=-1)


def likelihood_probs(logits: torch.Tensor, layouts: list[RowLayout], num_options: int) -> torch.Tensor:
    """Answer distribution per candidate from option-continuation log-likelihoods: -> [B / n, n].

    Rows come in groups of `num_options` consecutive rows per candidate.
    """
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    scores = []
    for b, layout in enumerate(layouts):
        start = layout.answer_position
        tokens = torch.tensor(layout.continuation, device=logits.device)
        picked = log_probs[b, start : start + len(tokens)].gather(-1, tokens[:, None])  # [k, 1]
        scores.append(picked.sum())
    return torch.softmax(torch.stack(scores).view(-1, num_options), dim=-1)


def latent_logits(logits: torch.Tensor, layouts: list[RowLayout], rows: list[int]) -> torch.Tensor:
    """Next-token logits at the latent positions of the chosen rows: -> [len(rows), L, V]."""
    return torch.stack([logits[b, list(layouts[b].latent_positions)] for b in rows])
