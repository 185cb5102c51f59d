"""Zeroth-order REINFORCE / evolution-strategies update of the latent embeddings Z (DESIGN §2.5).

Antithetic noise pairs and a mean-reward baseline: g = mean_j((R_j - mean R) * xi_j) / sigma^2. Everything here
runs in fp32 under no_grad, so it works with 4-bit weights and on the CPU.
"""

from __future__ import annotations

import torch


def antithetic_noise(num_pairs: int, shape: tuple[int, ...], sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Noise [2P, *shape]: P Gaussian draws with standard deviation sigma followed by their negatives."""
    half = torch.randn((num_pairs, *shape), generator=generator) * sigma
    return torch.cat([half, -half], dim=0)


def es_gradient(rewards: torch.Tensor, noise: torch.Tensor, sigma: float, baseline: bool = True) -> torch.Tensor:
    """REINFORCE estimate of dE[R]/dZ from candidate rewards [N] and their noise [N, *shape] -> [*shape]."""
    centred = rewards - rewards.mean() if baseline else rewards
    weights = centred.view(-1, *([1] * (noise.dim() - 1)))
    return (weights * noise).mean(0) / sigma**2


def es_step(latents: torch.Tensor, gradient: torch.Tensor, lr: float, max_norm: float | None = None) -> torch.Tensor:
    """Gradient ascent on Z [L, D]; the step is clipped to `max_norm` (Frobenius) when given."""
    step = lr * gradient
    if max_norm is not None:
        norm = step.norm()
        if norm > max_norm:
            step = step * (max_norm / norm)
    return latents + step
