"""Entropy-based rewards (DESIGN §2.4), pure tensor functions over logits; higher means more confident.

(a) `latent_entropy_reward`: DMLR's 1 - mean top-k entropy of the next-token distributions at the latent rows;
    the top-k probabilities are renormalised and the entropy divided by log k, so the reward lies in [0, 1],
    is 0 for a uniform distribution and 1 for a one-hot one (unrenormalised, a uniform row would score
    higher than a row spread evenly over k tokens);
(b) `answer_entropy_reward`: 1 - normalised entropy of the answer distribution over the offered options;
(c) `confidence_reward`: DMLR's public-code variant, built on the mean negative log-probability c of the top-k
    tokens, which is unbounded above (about 10-60 on real models). It is mapped to 1 - log(k) / c, in [0, 1):
    c is at least log k (reached when the top k share the mass evenly: 0) and grows without bound as the mass
    leaves all but the top token (towards 1), so its weight means the same as the other two rewards'.

`REWARDS` names them (the keys of `ReasoningConfig.reward_weights`): a new reward is one entry there, its name
in `config.RewardName`, and its test; the engine, the studio's sliders and `/inspect` read the registry.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch


def topk_entropy(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Entropy (nats) of the renormalised k most likely tokens of each distribution: [..., V] -> [...]."""
    top = torch.softmax(logits.float().topk(min(k, logits.shape[-1]), dim=-1).values, dim=-1)  # [..., k]
    return -(top * top.clamp_min(1e-12).log()).sum(-1)


def normalised_topk_entropy(logits: torch.Tensor, k: int) -> torch.Tensor:
    """`topk_entropy` divided by log k: [..., V] -> [...] in [0, 1] (0 one-hot, 1 even over the top k)."""
    return topk_entropy(logits, k) / math.log(max(min(k, logits.shape[-1]), 2))


def latent_entropy_reward(latent_logits: torch.Tensor, k: int = 10) -> torch.Tensor:
    """DMLR E6 at the latent rows: [B, L, V] -> [B], 1 for one-hot rows, lowest for uniform rows."""
    return latent_reward_from_entropy(normalised_topk_entropy(latent_logits, k))


def latent_reward_from_entropy(entropy: torch.Tensor) -> torch.Tensor:
    """The latent reward from normalised per-latent entropies [B, L] (already computed for the trace) -> [B]."""
    return 1.0 - entropy.mean(-1)


def option_distribution(answer_logits: torch.Tensor, option_token_ids: torch.Tensor) -> torch.Tensor:
    """Renormalise the answer-position logits over the offered options' first tokens: [B, V], [n] -> [B, n]."""
    return torch.softmax(answer_logits.float()[..., option_token_ids], dim=-1)


def answer_entropy_reward(option_probs: torch.Tensor) -> torch.Tensor:
    """1 - entropy / log(n) of an answer distribution over n options: [B, n] -> [B] in [0, 1]."""
    n = option_probs.shape[-1]
    entropy = -(option_probs * option_probs.clamp_min(1e-12).log()).sum(-1)
    return 1.0 - entropy / math.log(max(n, 2))


def confidence_reward(latent_logits: torch.Tensor, k: int = 10) -> torch.Tensor:
    """DMLR code's token confidence, normalised: mean over latents of 1 - log(k) / c: [B, L, V] -> [B] in [0, 1).

    c = -(1/k) sum log p(top-k) per latent row; for k = 1 (c can be 0) the raw c / (1 + c) is used instead.
    """
    log_probs = torch.log_softmax(latent_logits.float(), dim=-1)
    k = min(k, log_probs.shape[-1])
    c = -log_probs.topk(k, dim=-1).values.mean(-1)  # [B, L], at least log k
    if k == 1:
        return (c / (1.0 + c)).mean(-1)
    return (1.0 - math.log(k) / c.clamp_min(math.log(k))).mean(-1)


def combine_rewards(components: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Weighted sum of reward components (each [B]); components with weight 0 or absent weight are ignored."""
    used = [(weights[name], value) for name, value in components.items() if weights.get(name, 0.0)]
    if not used:
        raise ValueError(f"no reward component has a non-zero weight (components: {sorted(components)})")
    return sum(w * v for w, v in used)


@dataclass(frozen=True)
class RewardSignals:
    """What one evaluation of the candidates gives the rewards (C candidates, L latents, n options)."""

    option_probs: torch.Tensor  # [C, n]
    latent_logits: torch.Tensor | None = None  # [C, L, V], None without latents
    latent_entropy: torch.Tensor | None = None  # [C, L], normalised top-k entropies (computed once, for the trace)
    top_k: int = 10


@dataclass(frozen=True)
class Reward:
    """One reward: its label in the studio, whether it reads the latent rows, and its function -> [C]."""

    label: str
    needs_latents: bool
    score: Callable[[RewardSignals], torch.Tensor]


REWARDS: dict[str, Reward] = {
    "answer": Reward("Answer-entropy weight", False, lambda s: answer_entropy_reward(s.option_probs)),
    "latent": Reward("Latent-entropy weight", True, lambda s: latent_reward_from_entropy(s.latent_entropy)),
    "confidence": Reward("Token-confidence weight", True, lambda s: confidence_reward(s.latent_logits, s.top_k)),
}


def reward_components(signals: RewardSignals) -> dict[str, torch.Tensor]:
    """Every reward the signals allow (those needing latents only when there are latents), by name."""
    has_latents = signals.latent_logits is not None
    return {name: r.score(signals) for name, r in REWARDS.items() if has_latents or not r.needs_latents}
