"""Reports of scored runs: JSON, CSV in MMAD's column order, a markdown table, a plotly heatmap; run comparisons.

One run (`write_run_report`): `scores.json`, `accuracy.csv` (unparseable replies left out of the denominator),
`accuracy_unparseable_wrong.csv`, `report.md` and `heatmap.html` (subtask x dataset), plus the grounding figures
(`grounding_report.py`) in `report.md`, `grounding.csv` and `grounding.html`. Several runs (`write_comparison`):
`comparison.json`, `comparison.csv`, `comparison.md`, `comparison.html`, `comparison_grounding.csv` and `.html`.
The HTML files load `plotly.min.js` from the same folder (written once), so they work offline. A PNG is
written only when kaleido is installed (it is not a dependency: kaleido needs a Chrome download).
"""

from __future__ import annotations

import csv
import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reason_iad.eval.grounding_report import (
    comparison_grounding_markdown,
    grounding_figure,
    grounding_markdown,
    write_grounding_csv,
)
from reason_iad.eval.score import AVERAGE, DETECTION_COLUMNS, SCORE_COLUMNS, DatasetScores, EvalScores, ScoreTable

TABLE_HEADER: tuple[str, ...] = ("", *SCORE_COLUMNS, AVERAGE, *DETECTION_COLUMNS)
SHORT_NAMES = {
    "Anomaly Detection": "AnoDet",
    "Defect Classification": "DefCls",
    "Defect Localization": "DefLoc",
    "Defect Description": "DefDesc",
    "Defect Analysis": "DefAna",
    "Object Classification": "ObjCls",
    "Object Analysis": "ObjAna",
    AVERAGE: "Avg",
}
PNG_NOTE = "no PNG: kaleido is not installed (plotly needs it and a Chrome download for static images)"


@dataclass(frozen=True)
class ScoredRun:
    """A scored run and what describes it in reports."""

    label: str
    scores: EvalScores
    meta: dict = field(default_factory=dict)  # model, mode, shots, knowledge, readout, counts, ...


@dataclass(frozen=True)
class ReportFiles:
    """What a report wrote, and its markdown text."""

    paths: tuple[Path, ...]
    markdown: str
    png_note: str = ""


def _cell(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _row_values(row: DatasetScores) -> list[float | None]:
    return [*(row.accuracy[c] for c in SCORE_COLUMNS), row.average, *(row.detection[c] for c in DETECTION_COLUMNS)]


def write_csv(table: ScoreTable, path: Path) -> Path:
    """The table as MMAD writes it: dataset rows then Average; empty cells where nothing was asked."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(TABLE_HEADER)
        for row in table.rows:
            writer.writerow([row.dataset, *("" if v is None else repr(v) for v in _row_values(row))])
    return path


def markdown_table(table: ScoreTable) -> str:
    """The accuracy table in markdown (percent, one decimal)."""
    header = ["Dataset", *(SHORT_NAMES[c] for c in (*SCORE_COLUMNS, AVERAGE)), "Overkill", "Miss"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.rows:
        values = [
            *(row.accuracy[c] for c in SCORE_COLUMNS),
            row.average,
            row.detection["Overkill"],
            row.detection["Miss"],
        ]
        name = f"**{row.dataset}**" if row.dataset == AVERAGE else row.dataset
        lines.append("| " + " | ".join([name, *(_cell(v) for v in values)]) + " |")
    return "\n".join(lines)


def _describe(run: ScoredRun) -> list[str]:
    scores, meta = run.scores, run.meta
    scored = (
        "the engine's read-out letter"
        if scores.source == "readout"
        else (f"the letter parsed from the reply by the {meta.get('reply parser', 'strict')} parser")
    )
    lines = [f"- scored: {scored} (`--score {scores.source}`); engine read-out: {', '.join(scores.readouts) or '–'}"]
    lines += [f"- {key}: {value}" for key, value in meta.items()]
    by_subtask = ", ".join(f"{k}: {v}" for k, v in scores.unparseable_by_subtask.items())
    lines.append(
        f"- answers: {scores.num_answers}; unparseable: {scores.num_unparseable}"
        + (f" ({by_subtask})" if by_subtask else "")
    )
    agree, checked = scores.rationale_agreement
    if checked:
        lines.append(
            f"- rationales that agree with the answer (verdict, defect type, place): {agree} of {checked} "
            f"({100 * agree / checked:.1f} %)"
        )
    return lines


def run_markdown(run: ScoredRun) -> str:
    """The markdown report of one run: what was scored, both tables, then the grounding figures."""
    grounding = [grounding_markdown(run.scores.grounding)] if run.scores.grounding is not None else []
    return "\n".join(
        [
            f"# MMAD evaluation: {run.label}",
            "",
            *_describe(run),
            "",
            "## Accuracy (%), unparseable replies left out",
            "",
            markdown_table(run.scores.dropped),
            "",
            "## Accuracy (%), unparseable replies counted as wrong",
            "",
            markdown_table(run.scores.as_wrong),
            "",
            "Anomaly Detection is balanced accuracy (mean of normal and anomalous accuracy); Object Analysis merges "
            "Object Structure and Object Details; – marks cells without questions (left out of the averages).",
            "",
            *grounding,
        ]
    )


def _heatmap(rows: list[str], columns: list[str], values: list[list[float | None]], title: str):
    import plotly.graph_objects as go

    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=columns,
            y=rows,
            zmin=25,
            zmax=100,
            colorscale="RdBu_r",
            texttemplate="%{z:.1f}",
            hovertemplate="%{y} · %{x}: %{z:.2f}%<extra></extra>",
            colorbar={"title": "%"},
        )
    )
    figure.update_layout(title=title, yaxis={"autorange": "reversed"}, height=160 + 40 * len(rows))
    return figure


def _write_figure(figure, path: Path) -> tuple[list[Path], str]:
    """HTML (plotly.js beside it, offline) and, when kaleido is installed, a PNG."""
    figure.write_html(path, include_plotlyjs="directory", full_html=True)
    written = [path, path.parent / "plotly.min.js"]
    if importlib.util.find_spec("kaleido") is None:
        return written, PNG_NOTE
    try:
        figure.write_image(path.with_suffix(".png"))
    except Exception as err:  # noqa: BLE001 - any kaleido/Chrome failure only costs the optional PNG
        return written, f"no PNG: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return [*written, path.with_suffix(".png")], ""


def table_heatmap(table: ScoreTable, title: str):
    """Plotly heatmap of subtask (x) by dataset (y), Average row and column included."""
    columns = [*(SHORT_NAMES[c] for c in SCORE_COLUMNS), SHORT_NAMES[AVERAGE]]
    values = [[*(r.accuracy[c] for c in SCORE_COLUMNS), r.average] for r in table.rows]
    return _heatmap([r.dataset for r in table.rows], columns, values, title)


def write_run_report(run: ScoredRun, out_dir: str | Path) -> ReportFiles:
    """Write the report files of one run into `out_dir` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"label": run.label, "meta": run.meta, "scores": run.scores.to_dict()}
    paths = [out / "scores.json"]
    paths[0].write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    paths.append(write_csv(run.scores.dropped, out / "accuracy.csv"))
    paths.append(write_csv(run.scores.as_wrong, out / "accuracy_unparseable_wrong.csv"))
    markdown = run_markdown(run)
    figures, note = _write_figure(
        table_heatmap(run.scores.dropped, f"MMAD accuracy (%): {run.label}"), out / "heatmap.html"
    )
    figures += _write_grounding([run], out / "grounding", f"Grounding (%): {run.label}")
    if note:
        markdown += f"\n{note}.\n"
    (out / "report.md").write_text(markdown, encoding="utf-8")
    return ReportFiles(paths=(*paths, out / "report.md", *figures), markdown=markdown, png_note=note)


def _write_grounding(runs: Sequence[ScoredRun], stem: Path, title: str) -> list[Path]:
    """`<stem>.csv` and `<stem>.html` of the runs' grounding tables (nothing when no run has one)."""
    grounded = [run for run in runs if run.scores.grounding is not None]
    if not grounded:
        return []
    labels, tables = [r.label for r in grounded], [r.scores.grounding for r in grounded]
    written = [write_grounding_csv(stem.with_suffix(".csv"), labels, tables)]
    figures, _ = _write_figure(grounding_figure(labels, tables, title), stem.with_suffix(".html"))
    return [*written, *(path for path in figures if path.name != "plotly.min.js")]


def _comparison_rows(runs: Sequence[ScoredRun]) -> list[list]:
    rows = []
    for run in runs:
        mean = run.scores.dropped.mean
        rows.append(
            [
                run.label,
                *(mean.accuracy[c] for c in SCORE_COLUMNS),
                mean.average,
                mean.detection["Overkill"],
                mean.detection["Miss"],
                run.scores.num_answers,
                run.scores.num_unparseable,
                run.scores.as_wrong.mean.average,
            ]
        )
    return rows


COMPARISON_HEADER = (
    "run",
    *SCORE_COLUMNS,
    AVERAGE,
    "Overkill",
    "Miss",
    "answers",
    "unparseable",
    "Average (unparseable wrong)",
)


def comparison_markdown(runs: Sequence[ScoredRun]) -> str:
    """Runs side by side (Average rows), then each run's settings and per-dataset averages."""
    header = [
        "Run",
        *(SHORT_NAMES[c] for c in (*SCORE_COLUMNS, AVERAGE)),
        "Overkill",
        "Miss",
        "Answers",
        "Unparseable",
        "Avg (unparseable wrong)",
    ]
    lines = [
        "# MMAD comparison",
        "",
        "Average over datasets, accuracy in %; unparseable replies dropped unless stated.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in _comparison_rows(runs):
        cells = [row[0], *(_cell(v) for v in row[1:11]), str(row[11]), str(row[12]), _cell(row[13])]
        lines.append("| " + " | ".join(cells) + " |")
    datasets = sorted({r.dataset for run in runs for r in run.scores.dropped.datasets})
    lines += [
        "",
        "## Average per dataset",
        "",
        "| Run | " + " | ".join(datasets) + " |",
        "|" + "---|" * (len(datasets) + 1),
    ]
    for run in runs:
        by_name = {r.dataset: r.average for r in run.scores.dropped.datasets}
        lines.append("| " + " | ".join([run.label, *(_cell(by_name.get(d)) for d in datasets)]) + " |")
    grounded = [run for run in runs if run.scores.grounding is not None]
    if grounded:
        tables = [r.scores.grounding for r in grounded]
        lines += ["", comparison_grounding_markdown([r.label for r in grounded], tables)]
    for run in runs:
        lines += ["", f"## {run.label}", "", *_describe(run)]
    return "\n".join(lines) + "\n"


def write_comparison(runs: Sequence[ScoredRun], out_dir: str | Path) -> ReportFiles:
    """Write the side-by-side report of several runs into `out_dir` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = [{"label": r.label, "meta": r.meta, "scores": r.scores.to_dict()} for r in runs]
    (out / "comparison.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    with (out / "comparison.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COMPARISON_HEADER)
        writer.writerows([[v if not isinstance(v, float) else repr(v) for v in row] for row in _comparison_rows(runs)])
    markdown = comparison_markdown(runs)
    columns = [*(SHORT_NAMES[c] for c in SCORE_COLUMNS), SHORT_NAMES[AVERAGE]]
    values = [row[1:9] for row in _comparison_rows(runs)]
    figure = _heatmap([r.label for r in runs], columns, values, "MMAD accuracy (%), average over datasets")
    figures, note = _write_figure(figure, out / "comparison.html")
    figures += _write_grounding(runs, out / "comparison_grounding", "Grounding (%), all grounded answers")
    if note:
        markdown += f"\n{note}.\n"
    (out / "comparison.md").write_text(markdown, encoding="utf-8")
    names = ("comparison.json", "comparison.csv", "comparison.md")
    return ReportFiles(paths=(*(out / n for n in names), *figures), markdown=markdown, png_note=note)
