"""Zeroth-order REINFORCE / evolution-strategies update of the latent embeddings Z (DESIGN §2.5).

Antithetic noise pairs and a mean-reward baseline: g = mean_j((R_j - mean R) * xi_j) / sigma^2. The step follows
g's direction with a length set by the learning rate relative to the token-embedding RMS, so that a learning rate
means the same on every model (as the autograd path's Adam step does): each element moves by `lr * rms` on
average. A norm clip stays as a safety rail; whether it bound is returned with the step. Everything here runs in
fp32 under no_grad, so it works with 4-bit weights, on the CPU and on CUDA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def antithetic_noise(
    num_pairs: int, shape: tuple[int, ...], sigma: float, generator: torch.Generator, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Noise [2P, *shape] on `device`: P Gaussian draws (std sigma) followed by their negatives.

    The draws come from `generator` (a seeded CPU generator), then move to `device`: a seed gives the same noise on
    every device, so a seeded run is reproducible on the CPU and on a GPU alike.
    """
    half = torch.randn((num_pairs, *shape), generator=generator, dtype=torch.float32) * sigma
    return torch.cat([half, -half], dim=0).to(device)


def es_gradient(rewards: torch.Tensor, noise: torch.Tensor, sigma: float, baseline: bool = True) -> torch.Tensor:
    """REINFORCE estimate of dE[R]/dZ from candidate rewards [N] and their noise [N, *shape] -> [*shape] (fp32)."""
    rewards = rewards.to(noise.device, torch.float32)
    centred = rewards - rewards.mean() if baseline else rewards
    weights = centred.view(-1, *([1] * (noise.dim() - 1)))
    return (weights * noise.float()).mean(0) / sigma**2


@dataclass(frozen=True)
class Step:
    """The latents after one update, and whether the safety clip shortened the step."""

    latents: torch.Tensor  # [L, D] fp32
    clipped: bool
    norm: float  # Frobenius norm of the step actually taken


def clip_step(step: torch.Tensor, max_norm: float | None) -> tuple[torch.Tensor, bool]:
    """The step [L, D], shortened to `max_norm` (Frobenius) when longer; and whether it was."""
    norm = float(step.norm())
    if max_norm is not None and norm > max_norm:
        return step * (max_norm / norm), True
    return step, False


def es_step(latents: torch.Tensor, gradient: torch.Tensor, step_rms: float, max_norm: float | None = None) -> Step:
    """Gradient ascent on Z [L, D] along `gradient`, each element moving by `step_rms` on average (RMS).

    Args:
        latents: Current Z [L, D] (fp32).
        gradient: ES estimate [L, D]; a zero gradient (all rewards equal) leaves Z unchanged.
        step_rms: Per-element RMS of the step, in embedding units (the learning rate times the embedding RMS).
        max_norm: Safety rail: a step longer than this (Frobenius) is shortened to it, and `clipped` is set.
    """
    gradient = gradient.to(latents.device, torch.float32)
    length = gradient.norm()
    if not torch.isfinite(length) or float(length) == 0.0:
        return Step(latents, False, 0.0)
    step, clipped = clip_step(gradient * (step_rms * math.sqrt(gradient.numel()) / length), max_norm)
    return Step(latents + step, clipped, float(step.norm()))
