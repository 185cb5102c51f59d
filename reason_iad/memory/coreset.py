"""Greedy k-center coreset (PatchCore): keep the patches that best cover the bank, deterministically."""

from __future__ import annotations

import math

import torch

PROJECTION_DIM = 64  # selection runs on a random projection (Johnson-Lindenstrauss), as PatchCore does
PROJECTION_SEED = 0


def project(features: torch.Tensor, dim: int = PROJECTION_DIM, seed: int = PROJECTION_SEED) -> torch.Tensor:
    """A fixed random Gaussian projection to `dim` columns (returned unchanged when already that small).

    Args:
        features: [N, D] float32.
        dim: Target width.
        seed: Seed of the projection matrix (deterministic on every machine).

    Returns:
        [N, min(D, dim)].
    """
    if features.shape[1] <= dim:
        return features
    generator = torch.Generator().manual_seed(seed)
    matrix = torch.randn(features.shape[1], dim, generator=generator) / math.sqrt(dim)
    return features @ matrix.to(features.device, features.dtype)


def greedy_coreset(features: torch.Tensor, count: int, selected: torch.Tensor | None = None) -> torch.Tensor:
    """Indices of a greedy k-center coreset: each step adds the point farthest from everything chosen so far.

    Deterministic: ties go to the lowest index; without `selected`, the first centre is the point farthest
    from the mean. With `selected` (indices already kept, e.g. an existing bank), only new centres are added,
    which is how a bank grows incrementally.

    Args:
        features: [N, D] float32 (project first for speed).
        count: Number of new indices to choose (clipped to the points available).
        selected: Optional [K] long indices that are already centres.

    Returns:
        [count] long indices into `features`, in selection order.
    """
    n = features.shape[0]
    squared = (features * features).sum(dim=1)  # [N]

    def distances_to(index: int) -> torch.Tensor:  # squared L2 from every point to one centre: [N]
        return (squared - 2 * (features @ features[index]) + squared[index]).clamp_min_(0)

    if selected is not None and selected.numel() > 0:
        centres = features[selected]  # [K, D]
        nearest = torch.cdist(features, centres).min(dim=1).values.square()
        nearest[selected] = -1.0
    else:
        nearest = ((features - features.mean(dim=0)) ** 2).sum(dim=1)
    chosen: list[int] = []
    for _ in range(min(count, n - (0 if selected is None else selected.numel()))):
        index = int(torch.argmax(nearest))
        chosen.append(index)
        nearest = torch.minimum(nearest, distances_to(index))
        nearest[index] = -1.0
    return torch.tensor(chosen, dtype=torch.long)
