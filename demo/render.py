"""Pure renderers: typed results from the library -> figures, images, tables and markdown for the studio.

No Gradio objects here; every function is tested without a browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from reason_iad.types import Evidence, InjectedPatch, Inspection, ReasoningStep

if TYPE_CHECKING:
    from demo.ground_truth import GroundTruth

MASK_COLOUR = (57, 255, 20)  # lime: the ground-truth defect outline
PATCH_COLOURS = ["#e4572e", "#29335c", "#f3a712", "#669bbc", "#a8c686", "#8d6a9f", "#d1495b", "#00798c"]


def reasoning_figure(steps: Sequence[ReasoningStep], num_steps: int | None = None) -> go.Figure:
    """Reward, answer entropy and per-latent entropy per step (grows as steps stream in)."""
    figure = go.Figure()
    x = [s.step for s in steps]
    figure.add_trace(
        go.Scatter(x=x, y=[s.reward for s in steps], name="reward", mode="lines+markers", line={"width": 3})
    )
    figure.add_trace(
        go.Scatter(x=x, y=[s.best_reward for s in steps], name="best reward", mode="lines", line={"dash": "dot"})
    )
    figure.add_trace(
        go.Scatter(
            x=x,
            y=[1.0 - s.reward_components.get("answer", 0.0) for s in steps],
            name="answer entropy (normalised)",
            mode="lines+markers",
            yaxis="y2",
        )
    )
    latents = len(steps[0].latent_entropy) if steps else 0
    for index in range(latents):
        figure.add_trace(
            go.Scatter(
                x=x,
                y=[s.latent_entropy[index] for s in steps],
                name=f"latent {index + 1} entropy",
                mode="lines",
                line={"width": 1},
                yaxis="y2",
                opacity=0.7,
            )
        )
    for s in steps:
        if s.new_patches:
            figure.add_vline(x=s.step, line={"color": "#e4572e", "width": 1, "dash": "dash"})
    figure.update_layout(
        title="Latent reasoning",
        xaxis={"title": "step", "range": [0.5, (num_steps or max(x, default=1)) + 0.5]},
        yaxis={"title": "reward"},
        yaxis2={"title": "entropy", "overlaying": "y", "side": "right", "range": [0, 1]},
        legend={"orientation": "h", "y": -0.3, "font": {"size": 10}},
        height=300,
        margin={"l": 45, "r": 45, "t": 36, "b": 30},
    )
    return figure


def answer_figure(option_probs: dict[str, float], option_texts: dict[str, str] | None = None) -> go.Figure:
    """Horizontal bars of the current answer distribution."""
    letters = list(option_probs)
    labels = [f"{k}. {option_texts[k]}" if option_texts and k in option_texts else k for k in letters]
    best = max(option_probs, key=option_probs.get) if option_probs else None
    colours = ["#e4572e" if k == best else "#669bbc" for k in letters]
    figure = go.Figure(
        go.Bar(
            x=[option_probs[k] for k in letters],
            y=labels,
            orientation="h",
            marker_color=colours,
            text=[f"{option_probs[k]:.2f}" for k in letters],
            textposition="auto",
        )
    )
    figure.update_layout(
        title="Answer distribution",
        xaxis={"range": [0, 1]},
        height=70 + 32 * len(letters),
        margin={"l": 10, "r": 10, "t": 32, "b": 24},
        yaxis={"autorange": "reversed"},
    )
    return figure


def draw_patches(
    image: Image.Image,
    patches: Sequence[InjectedPatch],
    new: Sequence[InjectedPatch] = (),
    mask: np.ndarray | None = None,
    highlight: InjectedPatch | None = None,
) -> Image.Image:
    """The query image with injected patch boxes, labelled by step.

    Boxes added this step are drawn thicker. A `highlight`ed patch stays bright inside a white frame while the rest
    of the image dims and the other boxes thin out. A ground-truth `mask` (bool [H, W]) is outlined in `MASK_COLOUR`.
    """
    canvas = image.convert("RGB").copy()
    width = max(2, round(max(canvas.size) / 160))
    if highlight is not None:
        canvas = spotlight(canvas, highlight.box)
    if mask is not None:
        outline_mask(canvas, mask, width)
    draw = ImageDraw.Draw(canvas)
    fresh = {(p.token_index, p.step) for p in new}
    for patch in patches:
        if patch == highlight:
            continue
        colour = PATCH_COLOURS[(patch.step - 1) % len(PATCH_COLOURS)]
        thick = 1 if highlight is not None else width * 2 if (patch.token_index, patch.step) in fresh else width
        draw.rectangle(patch.box, outline=colour, width=thick)
        draw.text((patch.box[0] + thick + 1, patch.box[1] + thick), f"{patch.step}", fill=colour)
    if highlight is not None:
        x0, y0, x1, y1 = highlight.box
        right, bottom = canvas.size[0] - 1, canvas.size[1] - 1  # the frame stays inside the image
        frame = (max(x0 - width, 0), max(y0 - width, 0), min(x1 + width, right), min(y1 + width, bottom))
        draw.rectangle(frame, outline=(255, 255, 255), width=width)
        draw.rectangle(highlight.box, outline=PATCH_COLOURS[(highlight.step - 1) % len(PATCH_COLOURS)], width=width)
    return canvas


def spotlight(canvas: Image.Image, box: Sequence[float], dim: float = 0.45) -> Image.Image:
    """The image darkened to `dim` brightness everywhere but inside `box`."""
    dark = canvas.point(lambda v: int(v * dim))
    region = tuple(round(v) for v in box)
    dark.paste(canvas.crop(region), region[:2])
    return dark


def outline_mask(canvas: Image.Image, mask: np.ndarray, width: int = 2) -> None:
    """Draw a `width`-pixel line just outside a bool mask [H, W] onto `canvas`, in place (the defect stays visible)."""
    filled = Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255)
    if filled.size != canvas.size:
        filled = filled.resize(canvas.size, Image.Resampling.NEAREST)
    ring = ImageChops.subtract(filled.filter(ImageFilter.MaxFilter(2 * width + 1)), filled)
    canvas.paste(Image.new("RGB", canvas.size, MASK_COLOUR), mask=ring)


def answer_markdown(inspection: Inspection) -> str:
    """The answer, its rationale, warnings about the trace and one line of what the run used."""
    version = f" · knowledge version {inspection.knowledge_version}" if inspection.knowledge_version else ""
    template = f" · template `{inspection.template}`" if inspection.template else ""
    best = f" · best step {inspection.best_step}" if inspection.steps else ""
    return (
        f"### Answer: **{inspection.answer}. {inspection.answer_text}** "
        f"({inspection.option_probs[inspection.answer]:.0%})\n\n"
        f"**Rationale:** {inspection.rationale or '_(no text generated)_'}\n\n"
        f"{reasoning_notes(inspection)}"
        f"<small>Mode `{inspection.mode}`{best} · {len(inspection.injected)} patches injected{version}{template}"
        "</small>"
    )


def run_details(inspection: Inspection) -> str:
    """Where the time went, and the model (a small line under the plot)."""
    t = inspection.timings
    return (
        f"<small>Timings: prefix {t.prefix_ms:.0f} ms · {len(inspection.steps)} steps {t.steps_ms:.0f} ms "
        f"({t.mean_step_ms:.1f} ms/step) · decode {t.decode_ms:.0f} ms · total {t.total_ms:.0f} ms · "
        f"model: {inspection.model}</small>"
    )


def reasoning_notes(inspection: Inspection) -> str:
    """Warnings about the reasoning trace (a prior that fell back to attention, clipped steps), as markdown lines."""
    notes = []
    priors = {s.prior for s in inspection.steps}
    fallback = sorted(p for p in priors if p.startswith("attention ("))
    if fallback:
        notes.append(f"⚠ Patch proposals used {fallback[0]}: the configured prior could not be built.")
    clipped = sum(s.clipped for s in inspection.steps)
    if clipped:
        notes.append(
            f"⚠ {clipped} of {len(inspection.steps)} latent steps were clipped by the safety rail "
            "(the learning rate exceeds the exploration radius)."
        )
    return "".join(f"{n}\n\n" for n in notes)


def comparison_figure(results: Sequence[tuple[str, Inspection]]) -> go.Figure:
    """Reward (top) and normalised answer entropy (bottom) per step of several configurations, on shared axes.

    Configurations without latent steps (plain, knowledge) appear in the bottom panel as one marker at step 0,
    the entropy of their final answer distribution.
    """
    from plotly.subplots import make_subplots

    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("Reward per step", "Answer entropy (normalised)"),
    )
    palette = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
    for index, (name, inspection) in enumerate(results):
        colour = palette[index % len(palette)]
        x = [s.step for s in inspection.steps]
        if x:
            figure.add_trace(
                go.Scatter(
                    x=x,
                    y=[s.reward for s in inspection.steps],
                    name=name,
                    mode="lines+markers",
                    line={"color": colour},
                    legendgroup=name,
                ),
                row=1,
                col=1,
            )
        entropy = [1.0 - s.reward_components.get("answer", 0.0) for s in inspection.steps]
        figure.add_trace(
            go.Scatter(
                x=x or [0],
                y=entropy or [normalised_entropy(inspection.option_probs)],
                name=name,
                mode="lines+markers",
                line={"color": colour, "dash": "dot"},
                legendgroup=name,
                showlegend=not x,
            ),
            row=2,
            col=1,
        )
    figure.update_xaxes(title_text="step", row=2, col=1)
    figure.update_yaxes(range=[0, 1], row=2, col=1)
    figure.update_layout(height=440, margin={"l": 50, "r": 20, "t": 40, "b": 40})
    return figure


def normalised_entropy(probs: dict[str, float]) -> float:
    """Entropy of a distribution over options divided by log(number of options), in [0, 1].

    It is 1 minus the engine's answer-entropy reward of the same distribution.
    """
    import torch

    from reason_iad.reasoning.reward import answer_entropy_reward

    return 1.0 - float(answer_entropy_reward(torch.tensor(list(probs.values()), dtype=torch.float32)))


COMPARISON_HEADERS = [
    "configuration",
    "model",
    "answer",
    "probability",
    "knowledge version",
    "entries",
    "steps",
    "patches",
    "prefix ms",
    "ms / step",
    "total ms",
]


def comparison_rows(results: Sequence[tuple[str, Inspection]]) -> list[list]:
    """One row per configuration: model, answer and its probability, knowledge used, reasoning size, timings."""
    return [
        [
            name,
            i.model,
            f"{i.answer}. {i.answer_text}",
            round(i.option_probs[i.answer], 3),
            "" if i.knowledge_version is None else i.knowledge_version,
            len(i.knowledge),
            len(i.steps),
            len(i.injected),
            round(i.timings.prefix_ms),
            round(i.timings.mean_step_ms, 1),
            round(i.timings.total_ms),
        ]
        for name, i in results
    ]


def anomaly_markdown(evidence) -> str:
    """Verdict, calibrated score and region of the visual memory's evidence."""
    if evidence is None:
        return "_Visual memory: no normal exemplars for this category (or disabled)._"
    return (
        f"**Visual memory:** {evidence.verdict} (score {evidence.score:.2f}, raw {evidence.raw_score:.3f}) · "
        f"most anomalous region: {evidence.region}"
    )


EVIDENCE_HEADERS = ["item", "citation", "on defect"]


def evidence_rows(
    evidence: Evidence, patches_hit: Sequence[bool] | None = None, anomaly_hit: bool | None = None
) -> list[list]:
    """One table row per cited item (`Evidence.lines()`): a short key, the citation, and whether it is on the defect.

    Args:
        evidence: The answer's cited evidence.
        patches_hit: Per kept patch, whether it overlaps the ground-truth mask (None: no mask known).
        anomaly_hit: Whether the anomaly map's box overlaps the mask (None: no mask or no anomaly map).
    """
    keys = [f"knowledge {n}" for n in range(1, len(evidence.knowledge) + 1)]
    keys += [patch_key(n) for n in range(1, len(evidence.patches) + 1)]
    keys += ["anomaly map"] if evidence.anomaly is not None else []
    hits = [None] * len(evidence.knowledge) + list(patches_hit or [None] * len(evidence.patches))
    hits += [anomaly_hit] if evidence.anomaly is not None else []
    marks = {True: "yes", False: "no", None: ""}
    return [[key, line, marks[hit]] for key, line, hit in zip(keys, evidence.lines(), hits, strict=True)]


def patch_key(number: int) -> str:
    """The evidence table's key of the `number`-th kept patch (from 1)."""
    return f"patch {number}"


def patch_of_row(evidence: Evidence, row: Sequence | None) -> InjectedPatch | None:
    """The kept patch an evidence-table row cites (by its key, so a sorted table still works), or None."""
    key = str(row[0]) if row else ""
    for number, patch in enumerate(evidence.patches, start=1):
        if key == patch_key(number):
            return patch
    return None


def grounding_markdown(truth: GroundTruth | None, patches_hit: Sequence[bool], anomaly_hit: bool | None) -> str:
    """How many kept patches lie on the ground-truth defect, e.g. `2 of 3 kept patches on the defect`."""
    if truth is None:
        return "_No ground truth for this image: gallery examples and annotated images have one._"
    if not truth.defective:
        return f"Ground truth: **normal**, no defect to point at ({truth.source})."
    if truth.mask is None or not truth.mask.any():
        return f"Ground truth: **defective**, but without a defect mask ({truth.source})."
    line = f"**{sum(patches_hit)} of {len(patches_hit)} kept patches on the defect**"
    line += "" if patches_hit else " (no injected patch raised the reward, so none was kept)"
    if anomaly_hit is not None:
        line += " · the anomaly map's box " + ("overlaps it" if anomaly_hit else "misses it")
    return f"{line} (ground truth outlined in lime: {truth.source})."
