"""Per-category calibration: raw nearest-neighbour scores -> [0, 1] values that read normal/suspicious/anomalous.

From the leave-one-out scores of a category's normal exemplars (each scored against the bank without its own
patches): the median is the typical normal score and the (1 - false positive rate) quantile is the "suspicious"
threshold; their distance is the category's `spread`. With e = max(0, r - median) / spread, a raw value r maps
to e / (1 + e): 0 at (and below) the median, 0.5 at the threshold, 0.75 ("anomalous") two spreads above it,
approaching 1 beyond. It never saturates, so the map's peak stays where the raw peak is. The same map applies
pixel by pixel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from reason_iad.errors import UserError

Verdict = Literal["normal", "suspicious", "anomalous"]
SUSPICIOUS, ANOMALOUS = 0.5, 0.75  # calibrated levels: threshold, threshold + 2 spreads
MIN_RELATIVE_SPREAD = 0.02  # the threshold sits at least 2% of the normal level above it


@dataclass(frozen=True)
class Calibration:
    """A category's score scale.

    Attributes:
        normal_level: Median leave-one-out score of the normal exemplars (calibrated 0).
        threshold: Raw score from which an image is suspicious (calibrated 0.5).
        spread: Raw distance from `normal_level` to `threshold` (>= a small floor).
        false_positive_rate: The share of normal exemplar scores allowed above `threshold`.
        num_scores: Exemplar scores the calibration was fitted on.
    """

    normal_level: float
    threshold: float
    spread: float
    false_positive_rate: float
    num_scores: int

    @property
    def anomalous_threshold(self) -> float:
        """Raw score from which an image is anomalous (calibrated 0.75)."""
        return self.threshold + 2 * self.spread

    def with_threshold(self, threshold: float) -> Calibration:
        """This scale with "suspicious" moved to the raw score `threshold` (normal level kept, spread follows)."""
        if not threshold > self.normal_level:
            raise UserError(
                f"a suspicious threshold must lie above the normal level ({self.normal_level:.4g}), not {threshold:.4g}"
            )
        return dataclasses.replace(self, threshold=float(threshold), spread=float(threshold) - self.normal_level)

    def calibrate(self, raw: np.ndarray | float) -> np.ndarray | float:
        """Map raw scores (a number or an array) to [0, 1): e / (1 + e), e = excess over the normal level in spreads."""
        excess = np.maximum(np.asarray(raw, dtype=np.float64) - self.normal_level, 0.0) / self.spread
        calibrated = excess / (1.0 + excess)
        return float(calibrated) if np.ndim(raw) == 0 else calibrated.astype(np.float32)

    def verdict(self, calibrated_score: float) -> Verdict:
        """The reading of a calibrated score: normal below 0.5, suspicious from 0.5, anomalous from 0.75."""
        if calibrated_score >= ANOMALOUS:
            return "anomalous"
        return "suspicious" if calibrated_score >= SUSPICIOUS else "normal"


def fit_calibration(scores: Sequence[float], false_positive_rate: float = 0.05) -> Calibration:
    """Fit a category's calibration from leave-one-out scores of its normal exemplars.

    Args:
        scores: Raw image scores of normal exemplars, each scored without its own patches (at least 2).
        false_positive_rate: Share of normal scores allowed above the suspicious threshold.

    Returns:
        The calibration.

    Raises:
        UserError: Fewer than two scores, or scores that are not finite.
    """
    values = np.asarray(list(scores), dtype=np.float64)
    if values.size < 2:
        raise UserError("calibration needs the scores of at least two normal exemplars (or exemplar views)")
    if not np.all(np.isfinite(values)):
        raise UserError("calibration scores must be finite numbers")
    normal_level = float(np.median(values))
    quantile = float(np.quantile(values, 1.0 - false_positive_rate))
    spread = max(quantile - normal_level, MIN_RELATIVE_SPREAD * abs(normal_level), 1e-6)
    return Calibration(normal_level, normal_level + spread, spread, float(false_positive_rate), int(values.size))
