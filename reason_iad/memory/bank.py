"""Building a category's memory bank: exemplar views -> patch features -> coreset -> leave-one-out scores.

Few exemplars cover little of the normal variation, so each exemplar also contributes rotated and mirrored
views (the 8 symmetries of the square) while the category has few exemplars: `views_per_exemplar` spreads a
fixed view budget over the exemplars (10 exemplars x 8 views, 50 exemplars x 1 view by default).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from reason_iad.config import MemoryConfig
from reason_iad.memory.backbone import Backbone
from reason_iad.memory.coreset import greedy_coreset, project
from reason_iad.memory.scoring import patch_grid_distances, raw_anomaly

_T = Image.Transpose
VIEW_TRANSFORMS: tuple[tuple[_T, ...], ...] = (
    (),
    (_T.ROTATE_90,),
    (_T.ROTATE_180,),
    (_T.ROTATE_270,),
    (_T.FLIP_LEFT_RIGHT,),
    (_T.FLIP_LEFT_RIGHT, _T.ROTATE_90),
    (_T.FLIP_LEFT_RIGHT, _T.ROTATE_180),
    (_T.FLIP_LEFT_RIGHT, _T.ROTATE_270),
)


@dataclass(frozen=True, eq=False)
class PatchSet:
    """Patch features with their provenance.

    Attributes:
        vectors: float32 [M, D].
        exemplar_ids: [M] exemplar id of each row (numpy object array).
        patches: int32 [M]: view * (h * w) + row-major cell index.
    """

    vectors: torch.Tensor
    exemplar_ids: np.ndarray
    patches: np.ndarray

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def take(self, index: torch.Tensor | np.ndarray) -> PatchSet:
        """The rows at `index`."""
        index = np.asarray(index, dtype=np.int64)
        return PatchSet(self.vectors[torch.from_numpy(index)], self.exemplar_ids[index], self.patches[index])

    @staticmethod
    def concat(parts: Sequence[PatchSet]) -> PatchSet:
        """Rows of all parts, in order."""
        return PatchSet(
            torch.cat([p.vectors for p in parts]),
            np.concatenate([p.exemplar_ids for p in parts]),
            np.concatenate([p.patches for p in parts]),
        )


def views_per_exemplar(num_exemplars: int, config: MemoryConfig) -> int:
    """How many symmetric views each exemplar contributes: the view budget shared out, 1..views_per_exemplar."""
    return max(1, min(config.views_per_exemplar, config.view_budget // max(1, num_exemplars)))


def exemplar_views(image: Image.Image, count: int) -> list[Image.Image]:
    """The image and its first `count - 1` rotations/mirrors (see `VIEW_TRANSFORMS`)."""
    views = []
    for transforms in VIEW_TRANSFORMS[:count]:
        view = image
        for transform in transforms:
            view = view.transpose(transform)
        views.append(view)
    return views


def extract_patches(backbone: Backbone, images: dict[str, Image.Image], views: int) -> PatchSet:
    """Patch features of every view of every exemplar.

    Args:
        backbone: Feature extractor.
        images: Exemplar id -> RGB image.
        views: Views per exemplar (1..8).

    Returns:
        All patches, exemplar by exemplar, view by view.
    """
    parts = []
    for exemplar_id, image in images.items():
        features = backbone.patch_features(exemplar_views(image, views))  # [V, D, h, w]
        vectors = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])
        ids = np.full(vectors.shape[0], exemplar_id, dtype=object)
        parts.append(PatchSet(vectors.contiguous(), ids, np.arange(vectors.shape[0], dtype=np.int32)))
    if not parts:
        return PatchSet(torch.zeros(0, backbone.feature_dim), np.zeros(0, dtype=object), np.zeros(0, np.int32))
    return PatchSet.concat(parts)


def coreset_size(num_patches: int, config: MemoryConfig) -> int | None:
    """Patches to keep out of `num_patches`, or None when the bank stays whole."""
    if config.coreset_ratio >= 1 or num_patches <= config.coreset_min_patches:
        return None
    return max(1, math.ceil(config.coreset_ratio * num_patches))


def select_coreset(patches: PatchSet, count: int, existing: PatchSet | None = None) -> PatchSet:
    """Greedy k-center subset of `patches` (given `existing` centres, for an incremental update)."""
    if existing is None or len(existing) == 0:
        index = greedy_coreset(project(patches.vectors), count)
        return patches.take(np.sort(index.numpy()))
    joined = project(torch.cat([existing.vectors, patches.vectors]))
    already = torch.arange(len(existing))
    index = greedy_coreset(joined, count, selected=already) - len(existing)
    return patches.take(np.sort(index.numpy()))


def calibration_units(exemplar_ids: Sequence[str], limit: int, views: int) -> list[tuple[str, int]]:
    """(exemplar id, view) pairs scored leave-one-out: up to `limit` exemplars spread over the sorted ids.

    With a single exemplar, its views stand in for exemplars (each view is scored against the other views).
    """
    ids = sorted(exemplar_ids)
    if len(ids) == 1:
        return [(ids[0], view) for view in range(views)]
    picks = np.unique(np.linspace(0, len(ids) - 1, num=min(limit, len(ids))).round().astype(int))
    return [(ids[i], 0) for i in picks]


def leave_one_out_scores(
    backbone: Backbone, images: dict[str, Image.Image], bank: PatchSet, views: int, config: MemoryConfig
) -> list[float]:
    """Raw image scores of normal exemplars, each against the bank without its own rows.

    Args:
        backbone: Feature extractor.
        images: Exemplar id -> RGB image (every exemplar of the bank).
        bank: The category's bank as stored.
        views: Views per exemplar of the stored bank (used only when there is a single exemplar).
        config: Scoring settings.

    Returns:
        One score per calibration unit (empty when nothing can be held out).
    """
    units = calibration_units(list(images), config.calibration_exemplars, views)
    scores = []
    for exemplar_id, view in units:
        features = backbone.patch_features(exemplar_views(images[exemplar_id], view + 1)[view:])[0]  # [D, h, w]
        if len(images) == 1:
            keep = bank.patches // (features.shape[1] * features.shape[2]) != view
        else:
            keep = bank.exemplar_ids != exemplar_id
        if not keep.any():
            continue
        distances = patch_grid_distances(features, bank.vectors[torch.from_numpy(keep)])
        scores.append(
            raw_anomaly(
                distances, backbone.image_size, config.smoothing_sigma, config.score_mode, config.score_top_k
            ).score
        )
    return scores
