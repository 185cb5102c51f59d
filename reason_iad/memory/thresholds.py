"""Curated "suspicious" thresholds per category: versioned, with author, restorable; and what moving one changes.

The fitted calibration puts "suspicious" at the (1 - false positive rate) quantile of the exemplars' leave-one-out
scores. A curator who knows the line better can move it: each change appends one row to `memory_thresholds` (the
raw threshold, or none for "back to the fitted one", with author, time and note), so the table's rows are the
category's history and restoring an earlier change appends a copy of it. The latest row of a category wins.

`ThresholdView` is what a curator looks at before moving the line: the exemplars' leave-one-out scores and the
scores of recent inspections, on the fitted calibrated scale, and `verdict_changes` counts how many of the recent
inspections would read differently under a proposed threshold.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa

from reason_iad.errors import UserError
from reason_iad.lance_tables import commit_retrying, create_table_once
from reason_iad.memory.calibration import Calibration
from reason_iad.memory.exemplars import now
from reason_iad.memory.store import category_filter

THRESHOLD_TABLE = "memory_thresholds"
RECENT_SCORES = 200  # recent inspections kept per category (in this process)
MAX_NOTE_LENGTH = 500
_LOCK = threading.RLock()

THRESHOLD_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("category", pa.string()),
        ("number", pa.int64()),  # 1, 2, ... per category: the change's number in its history
        ("threshold", pa.float64()),  # raw score; NaN: the fitted threshold
        ("author", pa.string()),
        ("note", pa.string()),
        ("changed_at", pa.string()),
    ]
)


@dataclass(frozen=True)
class ThresholdChange:
    """One change of a category's suspicious threshold (`threshold` None: back to the fitted one)."""

    dataset: str
    category: str
    number: int
    threshold: float | None
    author: str
    note: str
    changed_at: str


class ThresholdStore:
    """The curated thresholds of one LanceDB folder (every change a new row and a new table version)."""

    def __init__(self, uri: str | Path) -> None:
        self.db = lancedb.connect(str(uri))
        with _LOCK:
            self.table = create_table_once(self.db, THRESHOLD_TABLE, THRESHOLD_SCHEMA)

    def history(self, dataset: str, category: str) -> list[ThresholdChange]:
        """The category's changes, oldest first."""
        self.table.checkout_latest()
        rows = self.table.search().where(category_filter(dataset, category)).limit(None).to_list()
        changes = [
            ThresholdChange(**{**row, "threshold": None if np.isnan(row["threshold"]) else row["threshold"]})
            for row in rows
        ]
        return sorted(changes, key=lambda c: c.number)

    def current(self, dataset: str, category: str) -> float | None:
        """The curated raw threshold in force, None when the fitted one applies."""
        history = self.history(dataset, category)
        return history[-1].threshold if history else None

    def set(self, dataset: str, category: str, threshold: float | None, author: str, note: str = "") -> ThresholdChange:
        """Record a new threshold (None: back to the fitted one) for the category; returns the change."""
        if not author.strip():
            raise UserError("a threshold change needs an author")
        if threshold is not None and not (np.isfinite(threshold) and threshold > 0):
            raise UserError(f"a threshold must be a positive raw score, not {threshold!r}")
        with _LOCK:
            number = len(self.history(dataset, category)) + 1
            change = ThresholdChange(
                dataset, category, number, threshold, author.strip(), note[:MAX_NOTE_LENGTH], now()
            )
            row = {**change.__dict__, "threshold": float("nan") if threshold is None else float(threshold)}
            table = pa.Table.from_pylist([row], schema=THRESHOLD_SCHEMA)
            commit_retrying(self.table, lambda thresholds: thresholds.add(table))
        return change

    def restore(self, dataset: str, category: str, number: int, author: str) -> ThresholdChange:
        """Make change `number` of the category's history the one in force again (a new change copying it)."""
        found = next((c for c in self.history(dataset, category) if c.number == number), None)
        if found is None:
            raise UserError(f"{dataset}/{category} has no threshold change number {number}")
        return self.set(dataset, category, found.threshold, author, f"restored change {number}")


class RecentScores:
    """Raw scores of the latest inspections per category (this process only; at most `RECENT_SCORES` each)."""

    def __init__(self, size: int = RECENT_SCORES) -> None:
        self.size = size
        self._scores: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def add(self, dataset: str, category: str, raw: float) -> None:
        """Remember one inspection's raw score."""
        with self._lock:
            self._scores.setdefault((dataset, category), deque(maxlen=self.size)).append(float(raw))

    def of(self, dataset: str, category: str) -> tuple[float, ...]:
        """The category's remembered raw scores, oldest first."""
        with self._lock:
            return tuple(self._scores.get((dataset, category), ()))


@dataclass(frozen=True)
class ThresholdView:
    """What a curator sees before moving a category's threshold.

    Attributes:
        fitted: The calibration fitted on the exemplars (its threshold: calibrated 0.5 on this scale).
        current: The calibration in force (the fitted one, or with a curator's threshold).
        exemplar_scores: Leave-one-out raw scores of the exemplars.
        recent_scores: Raw scores of recent inspections (this process).
        history: The category's threshold changes, oldest first.
    """

    fitted: Calibration
    current: Calibration
    exemplar_scores: tuple[float, ...]
    recent_scores: tuple[float, ...]
    history: tuple[ThresholdChange, ...]

    @property
    def threshold(self) -> float:
        """The raw suspicious threshold in force."""
        return self.current.threshold

    @property
    def curated(self) -> bool:
        """Whether a curator's threshold is in force."""
        return self.current.threshold != self.fitted.threshold

    def on_fitted_scale(self, raw: Sequence[float] | float) -> np.ndarray | float:
        """Raw scores on the fitted calibrated scale (0.5 = the fitted threshold)."""
        return self.fitted.calibrate(raw)

    def raw_of(self, calibrated: float) -> float:
        """The raw score at a point of the fitted calibrated scale (0 < calibrated < 1)."""
        return raw_at(self.fitted, calibrated)


def raw_at(fitted: Calibration, calibrated: float) -> float:
    """The raw score that `fitted` calibrates to `calibrated` (the inverse of e / (1 + e), 0 < calibrated < 1)."""
    if not 0.0 < calibrated < 1.0:
        raise UserError(f"a calibrated threshold must lie strictly between 0 and 1, not {calibrated}")
    return fitted.normal_level + fitted.spread * calibrated / (1.0 - calibrated)


def verdict_changes(raw_scores: Sequence[float], current: Calibration, proposed: Calibration) -> Counter:
    """How many scores change reading between two calibrations, by "old -> new" (unchanged ones are not counted)."""
    changes: Counter = Counter()
    for raw in raw_scores:
        before = current.verdict(float(current.calibrate(raw)))
        after = proposed.verdict(float(proposed.calibrate(raw)))
        if before != after:
            changes[f"{before} -> {after}"] += 1
    return changes
