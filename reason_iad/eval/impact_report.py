"""Renderings of an `ImpactReport`: a text table, markdown, a plotly before/after figure, files in a folder."""

from __future__ import annotations

import json
from pathlib import Path

from reason_iad.eval.impact import ImpactReport, QuestionImpact

IMPACT_JSON, IMPACT_HTML = "impact.json", "impact.html"


def _percent(value: float) -> str:
    return f"{100 * value:5.1f}%"


def _letter(letter: str | None) -> str:
    return letter or "-"


def flip_line(q: QuestionImpact) -> str:
    """`image #n  subtask  question  B -> A  (fixed: wrong -> right)`."""
    was, now = ("right" if q.before == q.correct else "wrong"), ("right" if q.after == q.correct else "wrong")
    return (
        f"{q.image} #{q.id.rpartition('#')[2]}  {q.subtask}  {q.question!r}  "
        f"{_letter(q.before)} -> {_letter(q.after)}  ({q.kind}: {was} -> {now})"
    )


def summary_line(report: ImpactReport) -> str:
    """How many questions, how many prompts the model answered, how many came from the cache."""
    same = sum(q.same_knowledge for q in report.questions)
    return (
        f"{len(report.questions)} questions; the model answered {report.answered} prompts, {report.cached} came "
        f"from the cache; {same} questions retrieved the same knowledge under both versions ({report.seconds:.1f} s)"
    )


def impact_table(report: ImpactReport) -> str:
    """The per-subtask accuracies, the change, and every flipped answer, as plain text."""
    a, b = f"v{report.from_version}", f"v{report.to_version}"
    lines = [
        f"Knowledge impact on {report.scope}: version {report.from_version} -> {report.to_version} "
        f"(mode {report.mode}; model {report.model})",
        f"{'subtask':<24} {'questions':>9} {a:>7} {b:>7} {'change':>8}",
    ]
    for row in report.subtasks:
        lines.append(
            f"{row.subtask:<24} {row.questions:>9} {_percent(row.before_accuracy):>7} "
            f"{_percent(row.after_accuracy):>7} {row.change:>+8.1f}"
        )
    lines.append(f"Flipped answers: {len(report.flips)}")
    lines += [f"  {flip_line(q)}" for q in report.flips]
    lines.append(summary_line(report))
    return "\n".join(lines)


def impact_markdown(report: ImpactReport) -> str:
    """A short summary for the studio."""
    overall = report.subtasks[-1]
    kinds = {kind: sum(q.kind == kind for q in report.flips) for kind in ("fixed", "broken", "changed")}
    answers = "answer" if len(report.flips) == 1 else "answers"
    return (
        f"**{report.scope}**, knowledge version {report.from_version} → {report.to_version} (mode {report.mode}): "
        f"accuracy {_percent(overall.before_accuracy).strip()} → {_percent(overall.after_accuracy).strip()} "
        f"({overall.change:+.1f} points). **{len(report.flips)} {answers} flipped**: {kinds['fixed']} fixed, "
        f"{kinds['broken']} broken, {kinds['changed']} changed to another wrong answer.  \n{summary_line(report)}."
    )


def impact_figure(report: ImpactReport):
    """Grouped bars: accuracy per subtask under each version, the change written above the pair."""
    import plotly.graph_objects as go

    rows = report.subtasks
    names = [r.subtask for r in rows]
    figure = go.Figure()
    for label, values in (
        (f"version {report.from_version}", [100 * r.before_accuracy for r in rows]),
        (f"version {report.to_version}", [100 * r.after_accuracy for r in rows]),
    ):
        figure.add_bar(name=label, x=names, y=values, text=[f"{v:.0f}" for v in values], textposition="outside")
    for r in rows:
        if r.change:
            figure.add_annotation(x=r.subtask, y=108, text=f"{r.change:+.1f}", showarrow=False)
    figure.update_layout(
        barmode="group",
        title=f"Accuracy per subtask on {report.scope}: knowledge v{report.from_version} → v{report.to_version}",
        yaxis={"title": "accuracy (%)", "range": [0, 115]},
        height=420,
        margin={"t": 60, "b": 90},
        legend={"orientation": "h", "y": -0.25},
    )
    return figure


def write_impact(report: ImpactReport, folder: str | Path) -> tuple[Path, Path]:
    """Write `impact.json` and `impact.html` (the figure and the table) into `folder`; returns their paths."""
    import html

    out = Path(folder).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    data, page = out / IMPACT_JSON, out / IMPACT_HTML
    data.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    figure = impact_figure(report).to_html(full_html=False, include_plotlyjs=True)
    page.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Knowledge impact</title></head><body>"
        f"{figure}<pre>{html.escape(impact_table(report))}</pre></body></html>\n",
        encoding="utf-8",
    )
    return data, page
