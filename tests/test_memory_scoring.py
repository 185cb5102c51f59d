"""Pure tensor parts of the visual memory: distances, smoothing, scores, coreset, AUROC."""

import numpy as np
import pytest
import torch

from reason_iad.bench.memory_quality import auroc
from reason_iad.memory.coreset import greedy_coreset, project
from reason_iad.memory.scoring import gaussian_blur, image_score, nearest_distances, raw_anomaly


def test_nearest_distances_match_brute_force_across_chunks():
    generator = torch.Generator().manual_seed(0)
    queries, bank = torch.randn(7, 5, generator=generator), torch.randn(50, 5, generator=generator)
    expected = torch.cdist(queries, bank).min(dim=1).values
    assert torch.allclose(nearest_distances(queries, bank, chunk=8), expected, atol=1e-5)
    with pytest.raises(ValueError):
        nearest_distances(queries, bank[:0])


def test_gaussian_blur_keeps_mass_and_peak_position():
    image = torch.zeros(21, 31)
    image[10, 12] = 1.0
    blurred = gaussian_blur(image, sigma=2.0)
    assert blurred.shape == image.shape
    assert blurred.sum().item() == pytest.approx(1.0, abs=1e-4)
    assert divmod(int(blurred.argmax()), 31) == (10, 12)
    assert torch.equal(gaussian_blur(image, 0.0), image)


def test_image_score_max_and_top_k_mean():
    smooth = torch.zeros(16, 16)
    smooth[:8, :8] = 2.0  # one 8x8 cell at 2
    smooth[0, 15] = 5.0
    assert image_score(smooth, "max") == 5.0
    assert image_score(smooth, "topk", top_k=1, cell=8) == pytest.approx(2.0)
    assert image_score(smooth, "topk", top_k=2, cell=8) == pytest.approx((2.0 + 5.0 / 64) / 2)


def test_raw_anomaly_upsamples_to_the_input_and_back_to_the_image():
    grid = torch.zeros(4, 4)
    grid[0, 3] = 1.0
    raw = raw_anomaly(grid, input_size=32, sigma=1.0, mode="max", top_k=1)
    assert raw.smooth_map.shape == (32, 32)
    full = raw.at_size(64, 48)
    assert full.shape == (48, 64) and full.dtype == np.float32
    y, x = np.unravel_index(int(full.argmax()), full.shape)
    assert y < 12 and x >= 48  # top right


def test_greedy_coreset_is_deterministic_and_covers_the_clusters():
    generator = torch.Generator().manual_seed(1)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = torch.cat([c + 0.1 * torch.randn(30, 2, generator=generator) for c in centres])
    first = greedy_coreset(points, 3)
    assert torch.equal(first, greedy_coreset(points, 3))
    assert sorted(int(i) // 30 for i in first) == [0, 1, 2]  # one point from each cluster


def test_incremental_coreset_never_reselects_existing_centres():
    generator = torch.Generator().manual_seed(2)
    points = torch.randn(40, 3, generator=generator)
    chosen = greedy_coreset(points, 5, selected=torch.arange(10))
    assert len(chosen) == 5 and int(chosen.min()) >= 10 and len(set(chosen.tolist())) == 5
    assert project(points, dim=8).shape == (40, 3)
    assert project(torch.randn(5, 100), dim=8).shape == (5, 8)


def test_auroc_with_ties_matches_the_pair_count():
    labels = [0, 0, 1, 1, 0, 1]
    scores = [0.1, 0.4, 0.35, 0.8, 0.4, 0.4]
    pairs = [(p, n) for p in (2, 3, 5) for n in (0, 1, 4)]
    expected = sum(1.0 if scores[p] > scores[n] else 0.5 if scores[p] == scores[n] else 0.0 for p, n in pairs) / 9
    assert auroc(labels, scores) == pytest.approx(expected)
    with pytest.raises(ValueError):
        auroc([1, 1], [0.2, 0.3])
