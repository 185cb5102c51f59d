"""Entropy-based rewards (DESIGN §2.4), pure tensor functions over logits; higher means more confident.

(a) `latent_entropy_reward`: DMLR's 1 - mean top-k entropy of the next-token distributions at the latent rows;
    the top-k probabilities are renormalised and the entropy divided by log k, so the reward lies in [0, 1],
    is 0 for a uniform distribution and 1 for a one-hot one (unrenormalised, a uniform row would score
    higher than a row spread evenly over k tokens);
(b) `answer_entropy_reward`: 1 - normalised entropy of the answer distribution over the offered options;
(c) `confidence_reward`: DMLR's public-code variant, mean negative log-probability of the top-k tokens.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch


def topk_entropy(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Entropy (nats) of the renormalised k most likely tokens of each distribution: [..., V] -> [...]."""
    top = torch.softmax(logits.float().topk(min(k, logits.shape[-1]), dim=-1).values, dim=-1)  # [..., k]
    return -(top * top.clamp_min(1e-12).log()).sum(-1)


def latent_entropy_reward(latent_logits: torch.Tensor, k: int = 10) -> torch.Tensor:
    """DMLR E6 at the latent rows: [B, L, V] -> [B], 1 for one-hot rows, lowest for uniform rows."""
    entropy = topk_entropy(latent_logits, k)  # [B, L]
    return 1.0 - entropy.mean(-1) / math.log(max(min(k, latent_logits.shape[-1]), 2))


def option_distribution(answer_logits: torch.Tensor, option_token_ids: torch.Tensor) -> torch.Tensor:
    """Renormalise the answer-position logits over the offered options' first tokens: [B, V], [n] -> [B, n]."""
    return torch.softmax(answer_logits.float()[..., option_token_ids], dim=-1)


def answer_entropy_reward(option_probs: torch.Tensor) -> torch.Tensor:
    """1 - entropy / log(n) of an answer distribution over n options: [B, n] -> [B] in [0, 1]."""
    n = option_probs.shape[-1]
    entropy = -(option_probs * option_probs.clamp_min(1e-12).log()).sum(-1)
    return 1.0 - entropy / math.log(max(n, 2))


def confidence_reward(latent_logits: torch.Tensor, k: int = 10) -> torch.Tensor:
    """DMLR code's token confidence: mean over latents of -(1/k) sum log p(top-k): [B, L, V] -> [B]."""
    log_probs = torch.log_softmax(latent_logits.float(), dim=-1)
    top = log_probs.topk(min(k, log_probs.shape[-1]), dim=-1).values  # [B, L, k]
    return (-top.mean(-1)).mean(-1)


def combine_rewards(components: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Weighted sum of reward components (each [B]); components with weight 0 or absent weight are ignored."""
    used = [(weights[name], value) for name, value in components.items() if weights.get(name, 0.0)]
    if not used:
        raise ValueError(f"no reward component has a non-zero weight (components: {sorted(components)})")
    return sum(w * v for w, v in used)
