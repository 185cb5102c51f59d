"""Full-frame numeric fields the renderers are built from: coordinates, smooth noise, lighting, sensor noise.

Every field is a float32 array of shape (size, size) or (size, size, 3); values are in image units where
coordinates run over [0, 1). Randomness always comes from the caller's `numpy.random.Generator`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def coordinates(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1).

    Args:
        size: Image side in pixels.

    Returns:
        (y, x) float32 arrays of shape (size, size).
    """
    axis = (np.arange(size, dtype=np.float32) + 0.5) / size
    y, x = np.meshgrid(axis, axis, indexing="ij")
    return y, x


def resize_field(field: np.ndarray, size: int, resample: int = Image.Resampling.BICUBIC) -> np.ndarray:
    """Resample a 2-D float field to (size, size) with Pillow (fast, smooth).

    Args:
        field: 2-D array.
        size: Output side in pixels.
        resample: Pillow resampling filter.

    Returns:
        The resized float32 field.
    """
    image = Image.fromarray(np.ascontiguousarray(field, dtype=np.float32))
    return np.asarray(image.resize((size, size), resample=resample), dtype=np.float32)


def value_noise(rng: np.random.Generator, size: int, cells_y: int, cells_x: int | None = None) -> np.ndarray:
    """Smooth random field in roughly [-1, 1]: a coarse random grid upsampled bicubically.

    Args:
        rng: Random generator.
        size: Output side in pixels.
        cells_y: Grid cells along y (more cells = finer detail).
        cells_x: Grid cells along x (default: same as y); unequal counts stretch the noise.

    Returns:
        A (size, size) float32 field.
    """
    cells_x = cells_y if cells_x is None else cells_x
    grid = rng.random((max(2, cells_y), max(2, cells_x)), dtype=np.float32) * 2.0 - 1.0
    return resize_field(grid, size)


def fractal_noise(rng: np.random.Generator, size: int, base_cells: int, octaves: int = 3) -> np.ndarray:
    """Sum of value-noise octaves (each twice as fine and half as strong), roughly in [-1, 1].

    Args:
        rng: Random generator.
        size: Output side in pixels.
        base_cells: Grid cells of the coarsest octave.
        octaves: Number of octaves.

    Returns:
        A (size, size) float32 field.
    """
    total = np.zeros((size, size), dtype=np.float32)
    weight, norm = 1.0, 0.0
    for octave in range(octaves):
        cells = min(size, base_cells * 2**octave)
        total += weight * value_noise(rng, size, cells)
        norm += weight
        weight *= 0.5
    return total / norm


def lighting(rng: np.random.Generator, size: int) -> np.ndarray:
    """A slowly varying illumination multiplier: random linear gradient, vignette and exposure.

    Args:
        rng: Random generator.
        size: Image side in pixels.

    Returns:
        A (size, size) float32 multiplier around 1.
    """
    y, x = coordinates(size)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    strength = rng.uniform(0.04, 0.12)
    vignette = rng.uniform(0.0, 0.12)
    exposure = rng.uniform(0.93, 1.05)
    gradient = (x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle)
    radius2 = (x - 0.5) ** 2 + (y - 0.5) ** 2
    return (exposure * (1.0 + 2.0 * strength * gradient - vignette * radius2)).astype(np.float32)


def sensor_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """Gaussian per-pixel, per-channel noise with a random level (sigma 0.004-0.012).

    Args:
        rng: Random generator.
        size: Image side in pixels.

    Returns:
        A (size, size, 3) float32 field.
    """
    sigma = rng.uniform(0.004, 0.012)
    return rng.standard_normal((size, size, 3), dtype=np.float32) * np.float32(sigma)


def jitter_colour(rng: np.random.Generator, colour: tuple[float, float, float], amount: float) -> np.ndarray:
    """A colour with every channel moved by up to `amount`, clipped to [0, 1].

    Args:
        rng: Random generator.
        colour: RGB in [0, 1].
        amount: Largest change per channel.

    Returns:
        A float32 array of shape (3,).
    """
    shift = rng.uniform(-amount, amount, size=3)
    return np.clip(np.asarray(colour, dtype=np.float32) + shift, 0.0, 1.0).astype(np.float32)


def luminance(image: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an (..., 3) float image."""
    return image @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
