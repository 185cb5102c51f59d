"""The intermediate form of one render: material colours before lighting and noise, plus what was drawn.

A renderer returns a `Scene`; a defect painter returns a `Paint` (a mask and new material colours);
`finish` applies the scene's lighting and sensor noise, so clean and defective renders share both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reason_iad.synth.fields import lighting, sensor_noise


@dataclass
class Scene:
    """A clean render before lighting and noise.

    Attributes:
        base: (S, S, 3) float32 material colours in [0, 1].
        light: (S, S) float32 illumination multiplier.
        noise: (S, S, 3) float32 sensor noise.
        structure: Key of the rendered structure variant (see the catalog).
        detail: Key of the rendered colour/finish variant (see the catalog).
        layers: Renderer-specific parts a painter may reuse (background, object cover, pattern parameters).
    """

    base: np.ndarray
    light: np.ndarray
    noise: np.ndarray
    structure: str
    detail: str
    layers: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Image side in pixels."""
        return int(self.base.shape[0])


@dataclass
class Paint:
    """A painted defect: the pixels it owns and the new material colours there.

    Attributes:
        mask: (S, S) boolean; the defect changes pixels only where this is True.
        base: (S, S, 3) float32 material colours with the defect (only read inside the mask).
        traits: Words describing this instance (e.g. {"tone": "dark"}), used in descriptions.
    """

    mask: np.ndarray
    base: np.ndarray
    traits: dict[str, str] = field(default_factory=dict)


def finish(scene: Scene, base: np.ndarray) -> np.ndarray:
    """Apply the scene's lighting and sensor noise to material colours.

    Args:
        scene: The scene whose light and noise to use.
        base: (S, S, 3) material colours.

    Returns:
        The (S, S, 3) float32 image in [0, 1].
    """
    return np.clip(base * scene.light[..., None] + scene.noise, 0.0, 1.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Quantise a float image in [0, 1] to uint8 (round half up)."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def blend(base: np.ndarray, painted: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Mix `painted` over `base` with a per-pixel alpha of shape (S, S)."""
    a = alpha[..., None].astype(np.float32)
    return (base * (1.0 - a) + painted * a).astype(np.float32)


def lit_scene(rng: np.random.Generator, base: np.ndarray, structure: str, detail: str, layers: dict[str, Any]) -> Scene:
    """Wrap material colours into a `Scene`, drawing its lighting and sensor noise from `rng`.

    Args:
        rng: Random generator (advanced by the lighting and noise draws).
        base: (S, S, 3) material colours.
        structure: Rendered structure variant key.
        detail: Rendered colour/finish variant key.
        layers: Renderer-specific parts for painters.

    Returns:
        The scene.
    """
    size = int(base.shape[0])
    light = lighting(rng, size)
    noise = sensor_noise(rng, size)
    return Scene(np.clip(base, 0.0, 1.0).astype(np.float32), light, noise, structure, detail, layers)
