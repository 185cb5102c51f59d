"""Suffix rows for batched evaluation, and the two answer read-outs over a batch of rows.

A row holds the latents with their injected patches, the assistant header and, for the option-likelihood
read-out, one option's tokens.
Layout of a row: [z_1, patches of z_1..., z_2, ..., z_L, patches of z_L..., header..., option tokens...].
Rows are right-padded to one length: causal attention keeps padding from touching the real positions.
Only the logits that are read are computed: `logit_positions` lists the (row, position) pairs the read-out and the
rewards need, the backend returns those rows of logits [K, V] in that order, and `KeptLogits` finds them again.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    """Embeddings [S, D] (fp32) of one row and its layout; `embed` maps token ids [k] -> [k, D] (fp32)."""
    pieces, latent_positions, length = [], [], 0
    if spec.latents is not None:
        for index in range(spec.latents.shape[0]):
            pieces.append(spec.latents[index : index + 1].float())  # [1, D]
            latent_positions.append(length)
            length += 1
            attached = [p for latent, p in spec.patches if latent == index]
            if attached:
                pieces.append(torch.stack(attached).to(spec.latents.device, torch.float32))  # [m, D]
                length += len(attached)
    pieces.append(header.float())
    length += header.shape[0]
    answer_position = length - 1
    if spec.continuation:
        pieces.append(embed(torch.tensor(spec.continuation, device=header.device)).float())
        length += len(spec.continuation)
    layout = RowLayout(tuple(latent_positions), answer_position, spec.continuation, length)
    return torch.cat([p.to(header.device) for p in pieces]), layout


def pad_rows(rows: list[torch.Tensor]) -> torch.Tensor:
    """Right-pad rows [S_i, D] with zeros into one batch [B, S_max, D]."""
    width = max(r.shape[0] for r in rows)
    return torch.stack([torch.nn.functional.pad(r, (0, 0, 0, width - r.shape[0])) for r in rows])


def logit_positions(layouts: Sequence[RowLayout], latent_rows: Sequence[int] = ()) -> list[tuple[int, int]]:
    """The (row, position) pairs whose next-token logits are read, in a fixed order.

    Every row: its answer position and the positions that predict its continuation tokens (likelihood read-out).
    The rows in `latent_rows`: their latent positions too (the latent rewards). Padding is never read.
    """
    pairs = []
    for b, layout in enumerate(layouts):
        wanted = range(layout.answer_position, layout.answer_position + max(len(layout.continuation), 1))
        if b in latent_rows:
            wanted = [*layout.latent_positions, *wanted]
        pairs.extend((b, s) for s in wanted)
    return pairs


@dataclass(frozen=True)
class KeptLogits:
    """Next-token logits computed only at chosen (row, position) pairs of a suffix batch."""

    logits: torch.Tensor  # [K, V] fp32, one row per pair, in the order of `pairs`
    pairs: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {pair: k for k, pair in enumerate(self.pairs)})

    def at(self, row: int, positions: Sequence[int]) -> torch.Tensor:
        """Logits [len(positions), V] of `row` at `positions` (each must have been kept)."""
        index = [self._index[(row, s)] for s in positions]  # type: ignore[attr-defined]
        return self.logits[torch.tensor(index, device=self.logits.device)]


def letter_probs(kept: KeptLogits, layouts: list[RowLayout], option_token_ids: torch.Tensor) -> torch.Tensor:
    """Answer distribution per row from the letter logits at its answer position: -> [B, n]."""
    answer_logits = torch.cat([kept.at(b, [layout.answer_position]) for b, layout in enumerate(layouts)])  # [B, V]
    return torch.softmax(answer_logits[:, option_token_ids.to(answer_logits.device)].float(), dim=-1)


def likelihood_probs(kept: KeptLogits, layouts: list[RowLayout], num_options: int) -> torch.Tensor:
    """Answer distribution per candidate from option-continuation log-likelihoods: -> [B / n, n].

    Rows come in groups of `num_options` consecutive rows per candidate.
    """
    scores = []
    for b, layout in enumerate(layouts):
        start = layout.answer_position
        positions = range(start, start + len(layout.continuation))
        log_probs = torch.log_softmax(kept.at(b, positions).float(), dim=-1)  # [k, V]
        tokens = torch.tensor(layout.continuation, device=log_probs.device)
        scores.append(log_probs.gather(-1, tokens[:, None]).sum())
    return torch.softmax(torch.stack(scores).view(-1, num_options), dim=-1)


def latent_logits(kept: KeptLogits, layouts: list[RowLayout], rows: list[int]) -> torch.Tensor:
    """Next-token logits at the latent positions of the chosen rows: -> [len(rows), L, V]."""
    return torch.stack([kept.at(b, layouts[b].latent_positions) for b in rows])
