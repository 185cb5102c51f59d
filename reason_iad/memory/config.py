"""`MemoryConfig`: how the visual memory extracts, keeps, searches and calibrates patch features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reason_iad.errors import UserError

ScoreMode = Literal["max", "topk"]
SearchMode = Literal["auto", "exact", "ann"]


@dataclass(frozen=True)
class MemoryConfig:
    """Visual memory settings (DESIGN §2.8); the defaults are the measured ones (`reason-iad bench memory`).

    Attributes:
        enabled: Whether inspections consult the visual memory (the engine/studio decide what to do with it).
        backbone: Feature extractor name (see `memory.backbone.BACKBONES`).
        image_size: Side of the square the backbone sees (224 gives a 28x28 patch grid, 256 a 32x32 one).
        views_per_exemplar: Most symmetric views (rotations/mirrors, 1..8) an exemplar adds while exemplars are few;
            1 for categories whose orientation matters.
        view_budget: Views shared out over a category's exemplars (views per exemplar = budget // exemplars).
        coreset_ratio: Fraction of a category's exemplar patches kept by greedy k-center (1.0 keeps all).
        coreset_min_patches: Banks with fewer patches are kept whole whatever the ratio.
        score_mode: Image score: "max" of the patch scores or the mean of the `score_top_k` largest.
        score_top_k: Patches averaged by the "topk" score.
        smoothing_sigma: Gaussian sigma of the anomaly map, in pixels of the backbone input.
        false_positive_rate: Share of normal images allowed above the "suspicious" threshold.
        calibration_exemplars: At most this many exemplars are scored leave-one-out for the calibration.
        search: "exact" (torch, whole bank in memory), "ann" (LanceDB vector index) or "auto" (by bank size).
        ann_min_patches: "auto" uses the LanceDB index from this bank size on.
        index_min_rows: The patch table gets a vector index once it holds this many rows.
        device: Torch device for the backbone and exact search ("cpu", "cuda", "auto").
    """

    enabled: bool = False
    backbone: str = "efficientnet-lite0"
    image_size: int = 256
    views_per_exemplar: int = 8
    view_budget: int = 80
    coreset_ratio: float = 0.1
    coreset_min_patches: int = 16_384
    score_mode: ScoreMode = "topk"
    score_top_k: int = 10
    smoothing_sigma: float = 4.0
    false_positive_rate: float = 0.05
    calibration_exemplars: int = 24
    search: SearchMode = "auto"
    ann_min_patches: int = 1_000_000
    index_min_rows: int = 262_144
    device: str = "cpu"

    def __post_init__(self) -> None:
        checks = [
            (64 <= self.image_size <= 1024 and self.image_size % 32 == 0,
             "image_size must be a multiple of 32 between 64 and 1024"),
            (1 <= self.views_per_exemplar <= 8, "views_per_exemplar must be between 1 and 8"),
            (1 <= self.view_budget <= 10_000, "view_budget must be between 1 and 10000"),
            (0 < self.coreset_ratio <= 1, "coreset_ratio must be in (0, 1]"),
            (self.coreset_min_patches >= 0, "coreset_min_patches must not be negative"),
            (self.score_mode in ("max", "topk"), "score_mode must be max or topk"),
            (1 <= self.score_top_k <= 10_000, "score_top_k must be between 1 and 10000"),
            (0 <= self.smoothing_sigma <= 64, "smoothing_sigma must be between 0 and 64"),
            (0 < self.false_positive_rate < 0.5, "false_positive_rate must be in (0, 0.5)"),
            (2 <= self.calibration_exemplars <= 1000, "calibration_exemplars must be between 2 and 1000"),
            (self.search in ("auto", "exact", "ann"), "search must be auto, exact or ann"),
            (self.ann_min_patches >= 1 and self.index_min_rows >= 256, "ann_min_patches/index_min_rows too small"),
            (bool(self.backbone.strip()) and bool(self.device.strip()), "backbone and device must not be empty"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise UserError(message)
