"""The grounding part of the reports: markdown tables, CSV rows and a bar chart, for one run or several.

Cells read `value (chance)` in percent; `–` marks a figure no answer defines (for example a run recorded before
grounding was, or a mode without kept patches, attention map or visual memory).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from reason_iad.eval.grounding import METRICS
from reason_iad.eval.grounding_scores import METRIC_NAMES, GroundingRow, GroundingScores

CSV_HEADER: tuple[str, ...] = (
    "group",
    "name",
    "answers",
    "accuracy",
    *(column for metric in METRICS for column in (metric, f"{metric}_chance", f"{metric}_n")),
)
GROUP_TITLES = {"dataset": "By dataset", "category": "By category", "subtask": "By subtask"}
NOTE = (
    "Grounding of the answers on defective images with a ground-truth mask, in %, `value (chance)`. Patch hit: a "
    "kept patch overlaps the mask; kept-patch precision: share of kept patches that do; attention pointing: the "
    "attention map's peak token is within one token of the mask; anomaly pointing: the anomaly map's peak is within "
    "1/16 of the shorter side of the mask; box IoU: the evidence box against the mask's bounding box (chance: the "
    "whole-image box). Acc: accuracy on the same answers. – marks figures no answer defines."
)


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def metric_cell(row: GroundingRow, metric: str) -> str:
    """`value (chance)` of one metric, `–` when undefined."""
    mean = row.metrics.get(metric)
    if mean is None or mean.value is None:
        return "–"
    return f"{mean.value:.1f} ({_number(mean.chance)})"


def _header(first: Sequence[str]) -> list[str]:
    header = [*first, "Answers", "Acc", *(METRIC_NAMES[m] for m in METRICS)]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]


def _line(first: Sequence[str], row: GroundingRow) -> str:
    cells = [*first, str(row.answers), _number(row.accuracy), *(metric_cell(row, m) for m in METRICS)]
    return "| " + " | ".join(cells) + " |"


def _ungrounded(scores: GroundingScores) -> list[str]:
    if not scores.ungrounded_defective:
        return []
    return [
        f"{scores.ungrounded_defective} answers on defective images carry no grounding (no ground-truth mask, "
        "or recorded before grounding was).",
        "",
    ]


def grounding_markdown(scores: GroundingScores) -> str:
    """The grounding section of one run's report: all answers, then per dataset, category and subtask."""
    lines = ["## Grounding (%), value (chance)", "", NOTE, "", *_ungrounded(scores), *_header(["Group"])]
    lines.append(_line(["**All**"], scores.overall))
    for group, title in GROUP_TITLES.items():
        rows = scores.by(group)
        if rows:
            lines += ["", f"### {title}", "", *_header([group.capitalize()]), *(_line([r.name], r) for r in rows)]
    return "\n".join(lines) + "\n"


def comparison_grounding_markdown(labels: Sequence[str], scores: Sequence[GroundingScores]) -> str:
    """Runs side by side: all grounded answers per run, then per dataset and per subtask."""
    lines = ["## Grounding (%), value (chance)", "", NOTE, "", *_header(["Run"])]
    lines += [_line([label], s.overall) for label, s in zip(labels, scores, strict=True)]
    for group in ("dataset", "subtask"):
        names = list(dict.fromkeys(r.name for s in scores for r in s.by(group)))
        if not names:
            continue
        lines += ["", f"### {GROUP_TITLES[group]}", "", *_header([group.capitalize(), "Run"])]
        for name in names:
            for label, s in zip(labels, scores, strict=True):
                row = next((r for r in s.by(group) if r.name == name), None)
                if row is not None:
                    lines.append(_line([name, label], row))
    return "\n".join(lines) + "\n"


def csv_row(row: GroundingRow) -> list:
    """One CSV row (`CSV_HEADER` columns; empty cells where undefined)."""
    cells: list = [row.group, row.name, row.answers, "" if row.accuracy is None else repr(row.accuracy)]
    for metric in METRICS:
        mean = row.metrics[metric]
        cells += [
            "" if mean.value is None else repr(mean.value),
            "" if mean.chance is None else repr(mean.chance),
            mean.count,
        ]
    return cells


def write_grounding_csv(path: Path, labels: Sequence[str], scores: Sequence[GroundingScores]) -> Path:
    """Every grounding row of the runs (a `run` column first when there are several)."""
    several = len(labels) > 1
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run", *CSV_HEADER] if several else CSV_HEADER)
        for label, s in zip(labels, scores, strict=True):
            writer.writerows([[label, *csv_row(r)] if several else csv_row(r) for r in s.rows])
    return path


def grounding_figure(labels: Sequence[str], scores: Sequence[GroundingScores], title: str):
    """Plotly bars: each run's overall figure per metric, with the chance level as a marker on the bar."""
    import plotly.graph_objects as go

    names = [METRIC_NAMES[m] for m in METRICS]
    figure = go.Figure()
    for label, s in zip(labels, scores, strict=True):
        means = [s.overall.metrics[m] for m in METRICS]
        figure.add_bar(
            name=label,
            x=names,
            y=[m.value for m in means],
            offsetgroup=label,
            hovertemplate="%{x}: %{y:.1f}%<extra>" + label + "</extra>",
        )
        figure.add_scatter(
            name=f"{label}: chance",
            x=names,
            y=[m.chance for m in means],
            mode="markers",
            offsetgroup=label,
            marker={"symbol": "line-ew-open", "size": 28, "line": {"width": 3}},
            hovertemplate="%{x}: chance %{y:.1f}%<extra>" + label + "</extra>",
        )
    figure.update_layout(
        title=title, yaxis={"title": "%", "range": [0, 100]}, barmode="group", scattermode="group", height=420
    )
    return figure
