"""Pure tensor functions of the visual memory: nearest-neighbour distances, anomaly maps and image scores."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

BANK_CHUNK = 16_384  # bank rows per distance block: bounds memory at N x 16k floats


def nearest_distances(queries: torch.Tensor, bank: torch.Tensor, chunk: int = BANK_CHUNK) -> torch.Tensor:
    """Exact L2 distance from every query to its nearest bank row.

    Args:
        queries: [N, D] float32.
        bank: [M, D] float32, M >= 1.
        chunk: Bank rows compared at once.

    Returns:
        [N] float32 distances.
    """
    if bank.shape[0] == 0:
        raise ValueError("the memory bank is empty")
    best = torch.full((queries.shape[0],), math.inf, dtype=torch.float32, device=queries.device)
    for start in range(0, bank.shape[0], chunk):
        block = torch.cdist(queries, bank[start : start + chunk])  # [N, m]
        best = torch.minimum(best, block.min(dim=1).values)
    return best


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian, radius ceil(4 sigma) (scipy's default truncation): [2r + 1]."""
    radius = max(1, math.ceil(4 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a [H, W] map with reflected borders (identity when sigma is 0)."""
    if sigma <= 0:
        return image
    kernel = gaussian_kernel(sigma).to(image.device)
    radius = kernel.numel() // 2
    x = image[None, None]
    pad_w, pad_h = min(radius, image.shape[1] - 1), min(radius, image.shape[0] - 1)
    x = F.pad(x, (pad_w, pad_w, 0, 0), mode="reflect" if pad_w > 0 else "replicate")
    x = F.conv2d(x, kernel[radius - pad_w : radius + pad_w + 1].view(1, 1, 1, -1))
    x = F.pad(x, (0, 0, pad_h, pad_h), mode="reflect" if pad_h > 0 else "replicate")
    x = F.conv2d(x, kernel[radius - pad_h : radius + pad_h + 1].view(1, 1, -1, 1))
    return x[0, 0]


def smooth_patch_map(patch_scores: torch.Tensor, input_size: int, sigma: float) -> torch.Tensor:
    """Patch-grid scores [h, w] -> a smooth map at the backbone's input resolution [S, S] (PatchCore's map)."""
    upsampled = F.interpolate(
        patch_scores[None, None], size=(input_size, input_size), mode="bilinear", align_corners=False
    )[0, 0]
    return gaussian_blur(upsampled, sigma)


def resize_map(smooth: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """A map at input resolution [S, S] -> the original image size [height, width] (bilinear)."""
    if smooth.shape == (height, width):
        return smooth
    return F.interpolate(smooth[None, None], size=(height, width), mode="bilinear", align_corners=False)[0, 0]


def image_score(smooth: torch.Tensor, mode: str = "max", top_k: int = 10, cell: int = 8) -> float:
    """The image's anomaly score from its smoothed map.

    Args:
        smooth: [S, S] map at input resolution.
        mode: "max" (the map's peak) or "topk" (mean of the `top_k` largest patch-sized cell means).
        top_k: Cells averaged in "topk" mode.
        cell: Cell side in pixels for "topk" (the backbone stride).

    Returns:
        The raw (uncalibrated) score.
    """
    if mode == "max":
        return float(smooth.max())
    cells = F.avg_pool2d(smooth[None, None], kernel_size=cell, stride=cell).flatten()
    return float(cells.topk(min(top_k, cells.numel())).values.mean())


def patch_grid_distances(features: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """Nearest-bank distance of every patch of one image: features [D, h, w] -> [h, w]."""
    dim, height, width = features.shape
    queries = features.permute(1, 2, 0).reshape(-1, dim)
    return nearest_distances(queries, bank).view(height, width)


@dataclass(frozen=True, eq=False)
class RawAnomaly:
    """Uncalibrated result for one image.

    Attributes:
        smooth_map: [S, S] smoothed distance map at the backbone's input resolution (torch, CPU).
        score: Raw image score.
    """

    smooth_map: torch.Tensor
    score: float

    def at_size(self, width: int, height: int) -> np.ndarray:
        """The raw map at the image's size: float32 [height, width]."""
        return resize_map(self.smooth_map, width, height).numpy().astype(np.float32, copy=False)


def raw_anomaly(patch_distances: torch.Tensor, input_size: int, sigma: float, mode: str, top_k: int) -> RawAnomaly:
    """Patch-grid distances [h, w] -> smoothed map and image score (the same path for queries and calibration)."""
    smooth = smooth_patch_map(patch_distances.float().cpu(), input_size, sigma)
    stride = max(1, input_size // patch_distances.shape[-1])
    return RawAnomaly(smooth, image_score(smooth, mode, top_k, cell=stride))
