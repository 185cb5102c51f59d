"""MMAD scoring without MMAD's scorer bugs.

Per (dataset, subtask) accuracy in percent; Anomaly Detection is the balanced accuracy (mean of the accuracy on
normal and on anomalous images); `Object Structure` and `Object Details` are merged into Object Analysis. A
dataset's Average is the mean over its subtask columns, the Average row the mean over datasets (MMAD's
`accuracy_df.mean()` twice). Overkill = 100 - normal accuracy, Miss = 100 - anomalous accuracy, plus MMAD's
Recall / Precision / F1 of the defect class. Unparseable replies are counted and scored both ways: dropped (as
MMAD does, but without skipping the entry after each removed one) and as wrong. Cells without questions are
None (MMAD writes 0) and are left out of the means.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from statistics import fmean
from typing import Literal

from reason_iad.eval.answers import AnswerRecord, ScoreSource
from reason_iad.eval.consistency import agreement
from reason_iad.eval.grounding_scores import GroundingScores, score_grounding
from reason_iad.eval.reader import OBJECT_ANALYSIS, OBJECT_TAGS

ANOMALY_DETECTION = "Anomaly Detection"
SCORE_COLUMNS: tuple[str, ...] = (
    ANOMALY_DETECTION,
    "Defect Classification",
    "Defect Localization",
    "Defect Description",
    "Defect Analysis",
    "Object Classification",
    OBJECT_ANALYSIS,
)
"""MMAD's column order (all_result/*_accuracy.csv)."""
DETECTION_COLUMNS: tuple[str, ...] = ("Recall", "Precision", "F1", "Overkill", "Miss")
MMAD_DATASETS: tuple[str, ...] = ("DS-MVTec", "MVTec-AD", "MVTec-LOCO", "VisA", "GoodsAD")
AVERAGE = "Average"
Unparseable = Literal["dropped", "wrong"]


@dataclass
class _Tally:
    correct: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.total += 1
        self.correct += int(ok)

    @property
    def accuracy(self) -> float | None:
        return 100.0 * self.correct / self.total if self.total else None


@dataclass(frozen=True)
class DatasetScores:
    """One row of the accuracy table (a dataset, or the Average row)."""

    dataset: str
    accuracy: dict[str, float | None]  # SCORE_COLUMNS -> percent (None: no questions)
    average: float | None
    detection: dict[str, float | None]  # DETECTION_COLUMNS -> percent
    normal_accuracy: float | None = None
    anomalous_accuracy: float | None = None
    questions: dict[str, int] = field(default_factory=dict)  # SCORE_COLUMNS -> questions counted


@dataclass(frozen=True)
class ScoreTable:
    """The accuracy table under one treatment of unparseable replies."""

    unparseable: Unparseable
    datasets: tuple[DatasetScores, ...]
    mean: DatasetScores  # the Average row

    @property
    def rows(self) -> tuple[DatasetScores, ...]:
        """Dataset rows then the Average row."""
        return (*self.datasets, self.mean)


@dataclass(frozen=True)
class EvalScores:
    """Scores of a run: which letter was scored, how many replies were unparseable, and both tables."""

    source: ScoreSource  # readout | parsed
    readouts: tuple[str, ...]  # the engine read-outs found in the answers (letter, likelihood)
    num_answers: int
    num_unparseable: int
    unparseable_by_subtask: dict[str, int]
    dropped: ScoreTable  # unparseable replies left out of the denominator (MMAD's summary.py does so)
    as_wrong: ScoreTable  # unparseable replies counted as wrong
    grounding: GroundingScores | None = None  # against ground-truth masks (`grounding_scores.py`)
    rationale_agreement: tuple[int, int] = (0, 0)  # (agree, checkable) rationales (`consistency.py`)

    def to_dict(self) -> dict:
        """Plain JSON-ready data."""
        return asdict(self)


def score_column(subtask: str) -> str:
    """The table column of an MMAD `type` tag (object structure/details -> Object Analysis)."""
    return OBJECT_ANALYSIS if subtask in OBJECT_TAGS else subtask


def dataset_order(names: Iterable[str]) -> list[str]:
    """MMAD's datasets in MMAD's row order first, then any others alphabetically."""
    names = set(names)
    return [d for d in MMAD_DATASETS if d in names] + sorted(names - set(MMAD_DATASETS))


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return fmean(present) if present else None


def _detection(normal: _Tally, anomalous: _Tally) -> dict[str, float | None]:
    true_pos, false_neg = anomalous.correct, anomalous.total - anomalous.correct
    false_pos = normal.total - normal.correct
    recall = 100.0 * true_pos / (true_pos + false_neg) if true_pos + false_neg else None
    precision = 100.0 * true_pos / (true_pos + false_pos) if true_pos + false_pos else None
    f1 = None
    if precision is not None and recall is not None:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    overkill = None if normal.accuracy is None else 100.0 - normal.accuracy
    miss = None if anomalous.accuracy is None else 100.0 - anomalous.accuracy
    return {"Recall": recall, "Precision": precision, "F1": f1, "Overkill": overkill, "Miss": miss}


def _dataset_row(dataset: str, records: Sequence[AnswerRecord], source: ScoreSource, how: Unparseable):
    tallies = {column: _Tally() for column in SCORE_COLUMNS}
    normal, anomalous = _Tally(), _Tally()
    for record in records:
        given = record.scored_answer(source)
        if given is None and how == "dropped":
            continue
        ok = given == record.correct_answer
        column = score_column(record.subtask)
        tallies.setdefault(column, _Tally()).add(ok)
        if column == ANOMALY_DETECTION:
            (normal if record.is_normal else anomalous).add(ok)
    accuracy = {column: tallies[column].accuracy for column in SCORE_COLUMNS}
    accuracy[ANOMALY_DETECTION] = _mean([normal.accuracy, anomalous.accuracy])  # balanced accuracy
    return DatasetScores(
        dataset=dataset,
        accuracy=accuracy,
        average=_mean(accuracy.values()),
        detection=_detection(normal, anomalous),
        normal_accuracy=normal.accuracy,
        anomalous_accuracy=anomalous.accuracy,
        questions={c: tallies[c].total for c in SCORE_COLUMNS},
    )


def _mean_row(rows: Sequence[DatasetScores]) -> DatasetScores:
    return DatasetScores(
        dataset=AVERAGE,
        accuracy={c: _mean(r.accuracy[c] for r in rows) for c in SCORE_COLUMNS},
        average=_mean(r.average for r in rows),
        detection={c: _mean(r.detection[c] for r in rows) for c in DETECTION_COLUMNS},
        normal_accuracy=_mean(r.normal_accuracy for r in rows),
        anomalous_accuracy=_mean(r.anomalous_accuracy for r in rows),
        questions={c: sum(r.questions[c] for r in rows) for c in SCORE_COLUMNS},
    )


def score_table(records: Sequence[AnswerRecord], source: ScoreSource, how: Unparseable) -> ScoreTable:
    """The accuracy table of the records, unparseable replies `dropped` or counted as `wrong`."""
    by_dataset: dict[str, list[AnswerRecord]] = {}
    for record in records:
        by_dataset.setdefault(record.dataset, []).append(record)
    rows = tuple(_dataset_row(d, by_dataset[d], source, how) for d in dataset_order(by_dataset))
    return ScoreTable(unparseable=how, datasets=rows, mean=_mean_row(rows))


def score_answers(records: Sequence[AnswerRecord], source: ScoreSource = "readout") -> EvalScores:
    """Score a run's answers.

    Args:
        records: The answered questions (e.g. `read_answers(path).records`).
        source: `readout` scores the engine's read-out letter, `parsed` the letter parsed from the reply.

    Returns:
        `EvalScores` with the unparseable count and both tables.
    """
    if source not in ("readout", "parsed"):
        raise ValueError(f"source must be readout or parsed, not {source!r}")
    unparseable = Counter(score_column(r.subtask) for r in records if r.scored_answer(source) is None)
    return EvalScores(
        source=source,
        readouts=tuple(sorted({r.readout for r in records})),
        num_answers=len(records),
        num_unparseable=sum(unparseable.values()),
        unparseable_by_subtask={c: unparseable[c] for c in SCORE_COLUMNS if unparseable[c]},
        dropped=score_table(records, source, "dropped"),
        as_wrong=score_table(records, source, "wrong"),
        grounding=score_grounding(records, source),
        rationale_agreement=agreement(records),
    )
