import math

import pytest
import torch

from reason_iad.reasoning.reward import (
    answer_entropy_reward,
    combine_rewards,
    confidence_reward,
    latent_entropy_reward,
    option_distribution,
    topk_entropy,
)

V = 50


def _one_hot_logits(batch=1, latents=3):
    logits = torch.full((batch, latents, V), -30.0)
    logits[..., 7] = 30.0
    return logits


def test_uniform_is_lowest_and_one_hot_highest_latent_reward():
    uniform = torch.zeros(1, 3, V)
    peaked = torch.randn(1, 3, V, generator=torch.Generator().manual_seed(0)) * 3
    rewards = [latent_entropy_reward(x, k=10).item() for x in (uniform, peaked, _one_hot_logits())]
    assert rewards[0] == pytest.approx(0.0, abs=1e-6)
    assert rewards[0] < rewards[1] < rewards[2] == pytest.approx(1.0, abs=1e-6)


def test_topk_truncation_only_counts_the_k_most_likely_tokens():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.1, 0.05, 0.05]))
    p, q = 0.5 / 0.8, 0.3 / 0.8  # the top two, renormalised
    expected = -(p * math.log(p) + q * math.log(q))
    assert topk_entropy(logits, k=2).item() == pytest.approx(expected, rel=1e-5)
    assert topk_entropy(logits, k=2) < topk_entropy(logits, k=5)


def test_option_distribution_renormalises_over_offered_letters():
    logits = torch.zeros(2, V)
    logits[0, 3], logits[0, 9] = 2.0, 2.0  # token 9 is not an option: it must not take probability mass
    logits[1, 4] = 5.0
    probs = option_distribution(logits, torch.tensor([3, 4]))
    assert probs.shape == (2, 2)
    assert torch.allclose(probs.sum(-1), torch.ones(2))
    assert probs[0, 0] > 0.85 and probs[1, 1] > 0.99


def test_answer_entropy_reward_bounds():
    assert answer_entropy_reward(torch.full((1, 4), 0.25)).item() == pytest.approx(0.0, abs=1e-6)
    assert answer_entropy_reward(torch.tensor([[1.0, 0.0, 0.0]])).item() == pytest.approx(1.0, abs=1e-6)
    middle = answer_entropy_reward(torch.tensor([[0.7, 0.2, 0.1]])).item()
    assert 0.0 < middle < 1.0


def test_confidence_reward_grows_as_distributions_sharpen():
    flat, sharp = torch.zeros(1, 2, V), _one_hot_logits(latents=2)
    assert confidence_reward(sharp).item() > confidence_reward(flat).item()


def test_combine_rewards_weights_and_refuses_all_zero():
    parts = {"answer": torch.tensor([0.5, 1.0]), "latent": torch.tensor([0.2, 0.0])}
    assert torch.allclose(combine_rewards(parts, {"answer": 1.0, "latent": 0.5}), torch.tensor([0.6, 1.0]))
    assert torch.allclose(combine_rewards(parts, {"answer": 1.0}), parts["answer"])
    with pytest.raises(ValueError, match="non-zero weight"):
        combine_rewards(parts, {"answer": 0.0})


def test_confidence_reward_is_bounded_like_the_other_rewards():
    """Normalised to [0, 1): raw DMLR confidence is about 10-60 on real models, which would swamp the others."""
    generator = torch.Generator().manual_seed(1)
    for scale in (0.0, 1.0, 10.0, 100.0, 1e4):
        value = confidence_reward(torch.randn(4, 3, V, generator=generator) * scale, k=10)
        assert ((value >= 0) & (value < 1)).all()
    even = torch.full((1, 1, V), -1e4)
    even[..., :10] = 0.0  # the top 10 share all the mass evenly: the least confident top-10 shape
    assert confidence_reward(even, k=10).item() == pytest.approx(0.0, abs=1e-6)
    assert confidence_reward(_one_hot_logits(latents=1), k=10).item() > 0.9


def test_the_reward_registry_and_the_config_name_the_same_rewards():
    from typing import get_args

    from reason_iad.config import DEFAULT_REWARD_WEIGHTS, ReasoningConfig, RewardName
    from reason_iad.errors import UserError
    from reason_iad.reasoning.reward import REWARDS

    assert tuple(REWARDS) == get_args(RewardName) == tuple(DEFAULT_REWARD_WEIGHTS)
    assert ReasoningConfig(reward_weights={"latent": 2}).reward_weights == {
        "answer": 0.0,
        "latent": 2.0,
        "confidence": 0.0,
    }
    for weights, message in (
        ({"answr": 1.0}, "unknown rewards"),
        ({"answer": -1.0}, "not negative"),
        ({"answer": 0.0}, "at least one"),
        ([1.0], "must map"),
    ):
        with pytest.raises(UserError, match=message):
            ReasoningConfig(reward_weights=weights)
