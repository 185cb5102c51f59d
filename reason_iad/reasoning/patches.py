"""Patch scoring and selection for dynamic visual injection (DESIGN §2.6), pure tensor functions."""

from __future__ import annotations

from collections.abc import Collection

import torch


def similarity_scores(latent_hidden: torch.Tensor, patch_embeddings: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each latent's hidden state with each image token: [L, D], [n, D] -> [L, n]."""
    a = torch.nn.functional.normalize(latent_hidden.float(), dim=-1)
    b = torch.nn.functional.normalize(patch_embeddings.float(), dim=-1)
    return a @ b.T


def propose_patches(scores: torch.Tensor, per_latent: int, exclude: Collection[int] = ()) -> list[list[int]]:
    """For each latent row of scores [L, n], the `per_latent` best image tokens not yet used.

    Tokens proposed for an earlier latent are skipped too, so the trials of one step are disjoint.
    """
    taken = set(exclude)
    proposals = []
    for row in scores:
        order = torch.argsort(row, descending=True).tolist()
        chosen = [i for i in order if i not in taken][:per_latent]
        taken.update(chosen)
        proposals.append(chosen)
    return proposals


def mix_prior(scores: torch.Tensor, prior: torch.Tensor, weight: float) -> torch.Tensor:
    """Blend per-latent scores [L, n] with an anomaly prior [n]; each scaled to a maximum of 1 first.

    The prior (computed from pixel boxes, usually on the CPU) is moved to the scores' device.
    """
    rows = scores.float() / scores.float().amax(dim=-1, keepdim=True).clamp_min(1e-12)
    prior = prior.to(scores.device, torch.float32)
    anomaly = prior / prior.max().clamp_min(1e-12)
    return (1.0 - weight) * rows + weight * anomaly.expand_as(rows)


def below_prior_gate(prior: torch.Tensor, share: float) -> set[int]:
    """Image tokens [n] the anomaly prior does not flag: under `share` of its peak (none when share is 0).

    Proposals under the anomaly or mix prior skip them, so patches are tried where the visual memory sees the
    anomaly; a flat prior (a normal image: no peak to speak of) flags every token.
    """
    peak = float(prior.max()) if prior.numel() else 0.0
    if share <= 0 or peak <= 0:
        return set()
    return set(torch.nonzero(prior.float() < share * peak).flatten().tolist())


def attention_grid(attention: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Mean attention of some rows over an image's tokens, laid on its token grid: [R, n] -> [rows, cols]."""
    rows, cols = grid
    return attention.float().mean(0).reshape(rows, cols)
