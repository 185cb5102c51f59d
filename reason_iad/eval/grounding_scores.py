"""Grounding figures of a run: the answers' `Grounding` averaged per dataset, category and subtask.

Only answers that carry grounding count (questions on defective images with a ground-truth mask); each metric is
averaged over the answers where it is defined, in percent (box IoU too: mean IoU x 100), with the mean chance level
of the same answers beside it. Answers on defective images without grounding (no mask, or a run recorded before
grounding was) are counted, not scored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import fmean

from reason_iad.eval.answers import AnswerRecord, ScoreSource
from reason_iad.eval.grounding import METRICS
from reason_iad.eval.reader import OBJECT_ANALYSIS, OBJECT_TAGS
from reason_iad.mmad import SUBTASKS

ALL = "All"
GROUPS: tuple[str, ...] = ("dataset", "category", "subtask")
METRIC_NAMES = {
    "patch_hit": "Patch hit",
    "patch_precision": "Kept-patch precision",
    "attention_pointing": "Attention pointing",
    "anomaly_pointing": "Anomaly pointing",
    "box_iou": "Box IoU",
}


@dataclass(frozen=True)
class MetricMean:
    """A metric averaged over the answers where it is defined, in percent, with the mean chance level."""

    value: float | None  # None: defined for no answer
    chance: float | None
    count: int  # answers where the metric is defined


@dataclass(frozen=True)
class GroundingRow:
    """The grounding figures of one group of answers (all, a dataset, a category or a subtask)."""

    group: str  # all | dataset | category | subtask
    name: str
    answers: int  # answers with grounding
    accuracy: float | None  # percent correct among them (unparseable replies dropped)
    metrics: dict[str, MetricMean] = field(default_factory=dict)  # METRICS -> mean


@dataclass(frozen=True)
class GroundingScores:
    """A run's grounding table: the `All` row first, then datasets, categories and subtasks."""

    rows: tuple[GroundingRow, ...]
    ungrounded_defective: int = 0  # answers on defective images without grounding

    @property
    def overall(self) -> GroundingRow:
        """The row of all grounded answers."""
        return self.rows[0]

    def by(self, group: str) -> tuple[GroundingRow, ...]:
        """The rows of one grouping (`dataset`, `category` or `subtask`)."""
        return tuple(row for row in self.rows if row.group == group)


def subtask_column(subtask: str) -> str:
    """The report column of an MMAD `type` tag (object structure/details -> Object Analysis)."""
    return OBJECT_ANALYSIS if subtask in OBJECT_TAGS else subtask


KEYS: dict[str, Callable[[AnswerRecord], str]] = {
    "dataset": lambda r: r.dataset,
    "category": lambda r: f"{r.dataset}/{r.category}",
    "subtask": lambda r: subtask_column(r.subtask),
}


def _percent(values: list[float]) -> float | None:
    return 100.0 * fmean(values) if values else None


def metric_mean(records: Sequence[AnswerRecord], metric: str) -> MetricMean:
    """The mean of one metric (percent) and of its chance level over the records where it is defined."""
    defined = [r.grounding for r in records if r.grounding is not None and r.grounding.value(metric) is not None]
    return MetricMean(
        value=_percent([g.value(metric) for g in defined]),
        chance=_percent([g.chance(metric) for g in defined if g.chance(metric) is not None]),
        count=len(defined),
    )


def grounding_row(group: str, name: str, records: Sequence[AnswerRecord], source: ScoreSource) -> GroundingRow:
    """The figures of a group of grounded answers."""
    answered = [r for r in records if r.scored_answer(source) is not None]
    correct = [float(r.scored_answer(source) == r.correct_answer) for r in answered]
    return GroundingRow(
        group=group,
        name=name,
        answers=len(records),
        accuracy=_percent(correct),
        metrics={metric: metric_mean(records, metric) for metric in METRICS},
    )


def _ordered(group: str, names: set[str]) -> list[str]:
    """Subtasks in MMAD's column order (unknown ones last), other groups alphabetically."""
    if group != "subtask":
        return sorted(names)
    order = list(dict.fromkeys(subtask_column(tag) for tag in SUBTASKS))
    return [n for n in order if n in names] + sorted(names - set(order))


def score_grounding(records: Sequence[AnswerRecord], source: ScoreSource = "readout") -> GroundingScores:
    """The grounding table of a run's answers (an `All` row of dashes when none carries grounding)."""
    grounded = [r for r in records if r.grounding is not None]
    rows = [grounding_row("all", ALL, grounded, source)]
    for group in GROUPS:
        key = KEYS[group]
        for name in _ordered(group, {key(r) for r in grounded}):
            rows.append(grounding_row(group, name, [r for r in grounded if key(r) == name], source))
    ungrounded = sum(1 for r in records if not r.is_normal and r.grounding is None)
    return GroundingScores(rows=tuple(rows), ungrounded_defective=ungrounded)
