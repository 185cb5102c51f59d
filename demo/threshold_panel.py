"""The Knowledge tab's threshold panel: where a category's "suspicious" line sits, and what moving it changes.

A histogram of the exemplars' leave-one-out scores and of recent inspections on the category's fitted calibrated
scale (0.5 is the fitted threshold), the lines in force and proposed, and how many recent inspections would change
verdict. Saving, resetting and restoring are versioned writes with their author (`reason_iad.memory.thresholds`).
"""

from __future__ import annotations

import plotly.graph_objects as go

from demo.handlers import StudioHandlers, split_category
from reason_iad.errors import UserError
from reason_iad.memory.calibration import ANOMALOUS, SUSPICIOUS
from reason_iad.memory.thresholds import ThresholdView, verdict_changes

HISTORY_HEADERS = ["change", "suspicious from (raw)", "author", "when", "note"]


class ThresholdHandlers:
    """Read, preview and change a category's suspicious threshold."""

    def __init__(self, studio: StudioHandlers) -> None:
        self.studio = studio
        self.pipeline = studio.pipeline

    def _memory_and_names(self, choice: str | None):
        dataset, category = split_category(choice)
        if not category:
            raise UserError("choose a category")
        if self.pipeline.memory is None:
            raise UserError("the visual memory is off for this model: there is no anomaly threshold to set")
        return self.pipeline.memory, dataset, category

    def view(self, choice: str | None, proposed: float | None) -> tuple[go.Figure, str, list[list]]:
        """(histogram, summary, history rows) for a category and a proposed threshold (fitted scale, 0..1)."""
        memory, dataset, category = self._memory_and_names(choice)
        view = memory.threshold_view(dataset, category)
        proposal = _proposal(view, proposed)
        return threshold_figure(view, proposal), describe(view, proposal), history_rows(view)

    def save(self, choice: str | None, proposed: float | None, note: str, username: str | None) -> str:
        """Put the proposed threshold in force (curators only); returns a status line."""
        author = self.studio.curator(username, "change the anomaly threshold")
        memory, dataset, category = self._memory_and_names(choice)
        if proposed is None:
            raise UserError("move the slider to the threshold you want first")
        change = memory.set_threshold(dataset, category, float(proposed), author, note or "")
        return f"Saved change {change.number}: {category} is suspicious from raw {change.threshold:.4g} (by {author})."

    def reset(self, choice: str | None, username: str | None) -> str:
        """Go back to the fitted threshold (a change of its own, restorable)."""
        author = self.studio.curator(username, "change the anomaly threshold")
        memory, dataset, category = self._memory_and_names(choice)
        change = memory.set_threshold(dataset, category, None, author, "back to the fitted threshold")
        return f"Saved change {change.number}: {category} uses its fitted threshold again (by {author})."

    def restore(self, choice: str | None, number: float | None, username: str | None) -> str:
        """Make an earlier change the one in force again."""
        author = self.studio.curator(username, "change the anomaly threshold")
        memory, dataset, category = self._memory_and_names(choice)
        if not number:
            raise UserError("give the number of the change to restore (the history's first column)")
        change = memory.thresholds.restore(dataset, category, int(number), author)
        return f"Restored change {int(number)} as change {change.number} (by {author})."


def _proposal(view: ThresholdView, proposed: float | None):
    """The calibration a proposed point of the fitted scale gives (None: the one in force)."""
    if proposed is None:
        return None
    return view.fitted.with_threshold(view.raw_of(float(proposed)))


def describe(view: ThresholdView, proposal) -> str:
    """The summary under the histogram: the lines, exemplars above them, and the verdicts a change would flip."""
    fitted, current = view.fitted, view.current
    lines = [
        f"**Fitted:** suspicious from raw {fitted.threshold:.4g} ({len(view.exemplar_scores)} exemplar scores, "
        f"false positive rate {fitted.false_positive_rate:.0%}).",
        f"**In force:** {'curated' if view.curated else 'fitted'}, raw {view.threshold:.4g} "
        f"({view.on_fitted_scale(view.threshold):.2f} on the fitted scale).",
    ]
    if proposal is not None and abs(proposal.threshold - current.threshold) > 1e-12:
        above = sum(s >= proposal.threshold for s in view.exemplar_scores)
        changed = verdict_changes(view.recent_scores, current, proposal)
        detail = ", ".join(f"{n} {kind}" for kind, n in sorted(changed.items())) or "none"
        lines.append(
            f"**Proposed:** raw {proposal.threshold:.4g}: {above} of {len(view.exemplar_scores)} exemplars above it; "
            f"{sum(changed.values())} of {len(view.recent_scores)} recent inspections would change verdict ({detail})."
        )
    elif not view.recent_scores:
        lines.append("_No inspections of this category since the studio started._")
    return "  \n".join(lines)


def history_rows(view: ThresholdView) -> list[list]:
    """The category's threshold changes, newest first."""
    return [
        [c.number, "fitted" if c.threshold is None else f"{c.threshold:.4g}", c.author, c.changed_at[:19], c.note]
        for c in reversed(view.history)
    ]


def threshold_figure(view: ThresholdView, proposal) -> go.Figure:
    """Histogram of exemplar and recent-inspection scores on the fitted scale, with the thresholds marked."""
    figure = go.Figure()
    bins = {"start": 0.0, "end": 1.0, "size": 0.025}
    for name, scores, colour in (
        ("normal exemplars (leave-one-out)", view.exemplar_scores, "#2a9d8f"),
        ("recent inspections", view.recent_scores, "#6c757d"),
    ):
        if scores:
            values = view.on_fitted_scale(list(scores))
            figure.add_trace(go.Histogram(x=values, name=name, xbins=bins, marker_color=colour, opacity=0.7))
    current = view.current
    marks = [
        (SUSPICIOUS, "fitted suspicious", "#adb5bd", "dash"),
        (view.on_fitted_scale(current.threshold), "suspicious in force", "#e9a23b", "solid"),
        (view.on_fitted_scale(current.anomalous_threshold), "anomalous in force", "#d62828", "solid"),
    ]
    if proposal is not None:
        marks.append((view.on_fitted_scale(proposal.threshold), "proposed", "#7b2cbf", "dot"))
    for x, label, colour, dash in marks:
        figure.add_vline(x=float(x), line={"color": colour, "dash": dash, "width": 2})
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=label, line={"color": colour, "dash": dash}))
    axis = f"anomaly score, fitted scale ({SUSPICIOUS}: suspicious, {ANOMALOUS}: anomalous)"
    figure.update_layout(
        barmode="overlay",
        height=300,
        margin={"l": 40, "r": 10, "t": 30, "b": 40},
        xaxis={"title": axis, "range": [0, 1]},
        yaxis={"title": "images"},
        legend={"orientation": "h", "y": -0.3},
        title={"text": "Where the suspicious line sits", "font": {"size": 13}},
    )
    return figure
