import pytest
import torch

from reason_iad.reasoning.update import antithetic_noise, clip_step, es_gradient, es_step

TARGET = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])


def reward(z: torch.Tensor) -> torch.Tensor:
    """A smooth objective over a batch of Z [N, 2, 3]: highest at TARGET."""
    return -((z - TARGET) ** 2).sum(dim=(-1, -2))


def test_antithetic_noise_pairs_cancel():
    noise = antithetic_noise(3, (2, 3), sigma=0.1, generator=torch.Generator().manual_seed(0))
    assert noise.shape == (6, 2, 3)
    assert torch.allclose(noise[:3], -noise[3:])
    assert 0.03 < noise.std().item() < 0.3


def test_es_raises_the_reward_on_a_smooth_objective():
    generator = torch.Generator().manual_seed(42)
    z, sigma, step_rms = torch.zeros(2, 3), 0.3, 0.2
    start = reward(z[None]).item()
    for _ in range(60):
        noise = antithetic_noise(3, z.shape, sigma, generator)
        gradient = es_gradient(reward(z[None] + noise), noise, sigma)
        z = es_step(z, gradient, step_rms, max_norm=1.0).latents
        sigma, step_rms = sigma * 0.97, step_rms * 0.95
    assert reward(z[None]).item() > start + 0.9 * abs(start)  # most of the gap to the optimum closed


def test_es_step_moves_uphill_by_the_learning_rate_in_rms():
    """The step follows the gradient's direction; its per-element RMS is `step_rms`, whatever the gradient's scale."""
    z = torch.zeros(2, 3)
    for scale in (1e-4, 1.0, 1e4):
        update = es_step(z, TARGET * scale, step_rms=0.01)
        moved = update.latents - z
        assert moved.pow(2).mean().sqrt().item() == pytest.approx(0.01, rel=1e-5)
        assert torch.nn.functional.cosine_similarity(moved.flatten(), TARGET.flatten(), dim=0) > 0.999
        assert not update.clipped
    assert torch.equal(es_step(z, torch.zeros(2, 3), 0.01).latents, z)  # all rewards equal: stay


def test_es_step_learning_rate_sets_the_distance():
    near, far = es_step(torch.zeros(2, 3), TARGET, 0.01), es_step(torch.zeros(2, 3), TARGET, 0.05)
    assert far.norm == pytest.approx(5 * near.norm, rel=1e-5)


def test_noise_is_seeded_on_the_cpu_and_placed_on_the_requested_device():
    first = antithetic_noise(2, (2, 3), 0.1, torch.Generator().manual_seed(3))
    again = antithetic_noise(2, (2, 3), 0.1, torch.Generator().manual_seed(3), device="meta")
    assert again.device.type == "meta" and again.shape == first.shape and again.dtype == torch.float32


def test_antithetic_pairs_and_baseline_reduce_gradient_variance():
    """Measured, not assumed: spread of the estimate over 300 seeds, same number of reward evaluations."""
    z, sigma, true_gradient = torch.zeros(2, 3), 0.1, 2 * TARGET
    plain, improved = [], []
    for seed in range(300):
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn((6, 2, 3), generator=generator) * sigma  # 6 independent draws, no baseline
        plain.append(es_gradient(reward(z[None] + noise), noise, sigma, baseline=False))
        pairs = antithetic_noise(3, (2, 3), sigma, generator)  # 3 antithetic pairs, mean baseline
        improved.append(es_gradient(reward(z[None] + pairs), pairs, sigma, baseline=True))
    plain_error = ((torch.stack(plain) - true_gradient) ** 2).mean().item()
    improved_error = ((torch.stack(improved) - true_gradient) ** 2).mean().item()
    print(
        f"mean squared error of the gradient estimate: plain {plain_error:.1f}, antithetic+baseline "
        f"{improved_error:.2f}"
    )
    assert improved_error < 0.1 * plain_error


def test_step_is_clipped_and_says_so():
    z = torch.zeros(2, 3)
    update = es_step(z, torch.full((2, 3), 100.0), step_rms=1.0, max_norm=0.5)
    assert abs(update.latents.norm().item() - 0.5) < 1e-5 and update.clipped and update.norm == pytest.approx(0.5)
    step, clipped = clip_step(torch.full((2, 3), 0.01), max_norm=0.5)
    assert not clipped and torch.equal(step, torch.full((2, 3), 0.01))
