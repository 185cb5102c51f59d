"""Pure renderers: typed results from the library -> figures, images, tables and markdown for the studio.

No Gradio objects here; every function is tested without a browser.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw

from reason_iad.types import InjectedPatch, Inspection, ReasoningStep

PATCH_COLOURS = ["#e4572e", "#29335c", "#f3a712", "#669bbc", "#a8c686", "#8d6a9f", "#d1495b", "#00798c"]


def reasoning_figure(steps: Sequence[ReasoningStep], num_steps: int | None = None) -> go.Figure:
    """Reward, answer entropy and per-latent entropy per step (grows as steps stream in)."""
    figure = go.Figure()
    x = [s.step for s in steps]
    figure.add_trace(go.Scatter(x=x, y=[s.reward for s in steps], name="reward", mode="lines+markers",
                                line={"width": 3}))  # fmt: skip
    figure.add_trace(go.Scatter(x=x, y=[s.best_reward for s in steps], name="best reward", mode="lines",
                                line={"dash": "dot"}))  # fmt: skip
    figure.add_trace(go.Scatter(x=x, y=[1.0 - s.reward_components.get("answer", 0.0) for s in steps],
                                name="answer entropy (normalised)", mode="lines+markers", yaxis="y2"))  # fmt: skip
    latents = len(steps[0].latent_entropy) if steps else 0
    for index in range(latents):
        figure.add_trace(go.Scatter(x=x, y=[s.latent_entropy[index] for s in steps], name=f"latent {index + 1} entropy",
                                    mode="lines", line={"width": 1}, yaxis="y2", opacity=0.7))  # fmt: skip
    for s in steps:
        if s.new_patches:
            figure.add_vline(x=s.step, line={"color": "#e4572e", "width": 1, "dash": "dash"})
    figure.update_layout(
        title="Latent reasoning", xaxis={"title": "step", "range": [0.5, (num_steps or max(x, default=1)) + 0.5]},
        yaxis={"title": "reward"}, yaxis2={"title": "entropy", "overlaying": "y", "side": "right", "range": [0, 1]},
        legend={"orientation": "h", "y": -0.25}, height=360, margin={"l": 50, "r": 50, "t": 40, "b": 40},
    )  # fmt: skip
    return figure


def answer_figure(option_probs: dict[str, float], option_texts: dict[str, str] | None = None) -> go.Figure:
    """Horizontal bars of the current answer distribution."""
    letters = list(option_probs)
    labels = [f"{k}. {option_texts[k]}" if option_texts and k in option_texts else k for k in letters]
    best = max(option_probs, key=option_probs.get) if option_probs else None
    colours = ["#e4572e" if k == best else "#669bbc" for k in letters]
    figure = go.Figure(go.Bar(x=[option_probs[k] for k in letters], y=labels, orientation="h", marker_color=colours,
                              text=[f"{option_probs[k]:.2f}" for k in letters], textposition="auto"))  # fmt: skip
    figure.update_layout(title="Answer distribution", xaxis={"range": [0, 1]}, height=80 + 40 * len(letters),
                         margin={"l": 10, "r": 10, "t": 40, "b": 30}, yaxis={"autorange": "reversed"})  # fmt: skip
    return figure


def draw_patches(
    image: Image.Image, patches: Sequence[InjectedPatch], new: Sequence[InjectedPatch] = ()
) -> Image.Image:
    """The query image with injected patch boxes, labelled by step; boxes added this step drawn thicker."""
    canvas = image.convert("RGB").copy()
    draw = ImageDraw.Draw(canvas)
    fresh = {(p.token_index, p.step) for p in new}
    width = max(2, round(max(canvas.size) / 160))
    for patch in patches:
        colour = PATCH_COLOURS[(patch.step - 1) % len(PATCH_COLOURS)]
        thick = width * 2 if (patch.token_index, patch.step) in fresh else width
        draw.rectangle(patch.box, outline=colour, width=thick)
        draw.text((patch.box[0] + thick + 1, patch.box[1] + thick), f"{patch.step}", fill=colour)
    return canvas


def attention_overlay(image: Image.Image, attention_map: Sequence[Sequence[float]], alpha: float = 0.55) -> Image.Image:
    """The latent -> image attention map (token grid) as a red heat overlay on the image."""
    grid = np.asarray(attention_map, dtype=np.float32)
    if grid.size == 0:
        return image.convert("RGB")
    span = float(grid.max() - grid.min())
    normalised = (grid - grid.min()) / span if span > 0 else np.zeros_like(grid)
    heat = Image.fromarray((normalised * 255).astype(np.uint8)).resize(image.size, Image.Resampling.BILINEAR)
    red = Image.new("RGB", image.size, (228, 87, 46))
    mask = heat.point(lambda v: int(v * alpha))
    return Image.composite(red, image.convert("RGB"), mask)


def knowledge_rows(inspection: Inspection) -> list[list]:
    """Rows (id, title, score, pinned) of the knowledge that went into the prompt."""
    return [[k.id, k.title, round(k.score, 4), "pinned" if k.pinned else "retrieved"] for k in inspection.knowledge]


def answer_markdown(inspection: Inspection) -> str:
    """The answer with its evidence and where the time went."""
    t = inspection.timings
    version = f" · knowledge version {inspection.knowledge_version}" if inspection.knowledge_version else ""
    template = f" · template `{inspection.template}`" if inspection.template else ""
    best = f" · best step {inspection.best_step}" if inspection.steps else ""
    return (
        f"### Answer: **{inspection.answer}. {inspection.answer_text}** "
        f"({inspection.option_probs[inspection.answer]:.0%})\n\n"
        f"**Rationale:** {inspection.rationale or '_(no text generated)_'}\n\n"
        f"Mode `{inspection.mode}`{best} · {len(inspection.injected)} patches injected{version}{template}\n\n"
        f"{reasoning_notes(inspection)}"
        f"Timings: prefix {t.prefix_ms:.0f} ms · {len(inspection.steps)} steps {t.steps_ms:.0f} ms "
        f"({t.mean_step_ms:.1f} ms/step) · decode {t.decode_ms:.0f} ms · total {t.total_ms:.0f} ms\n\n"
        f"Model: {inspection.model}"
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
        notes.append(f"⚠ {clipped} of {len(inspection.steps)} latent steps were clipped by the safety rail "
                     "(the learning rate exceeds the exploration radius).")  # fmt: skip
    return "".join(f"{n}\n\n" for n in notes)


def replay_frame(image: Image.Image, steps: Sequence[ReasoningStep], upto: int) -> Image.Image:
    """The injection as it stood after step `upto` (for the replay slider)."""
    shown = [s for s in steps if s.step <= upto]
    if not shown:
        return image.convert("RGB")
    last = shown[-1]
    return draw_patches(image, last.injected, last.new_patches)


def comparison_figure(results: Sequence[tuple[str, Inspection]]) -> go.Figure:
    """Reward (top) and normalised answer entropy (bottom) per step of several configurations, on shared axes.

    Configurations without latent steps (plain, knowledge) appear in the bottom panel as one marker at step 0,
    the entropy of their final answer distribution.
    """
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                           subplot_titles=("Reward per step", "Answer entropy (normalised)"))  # fmt: skip
    palette = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
    for index, (name, inspection) in enumerate(results):
        colour = palette[index % len(palette)]
        x = [s.step for s in inspection.steps]
        if x:
            figure.add_trace(go.Scatter(x=x, y=[s.reward for s in inspection.steps], name=name, mode="lines+markers",
                                        line={"color": colour}, legendgroup=name), row=1, col=1)  # fmt: skip
        entropy = [1.0 - s.reward_components.get("answer", 0.0) for s in inspection.steps]
        figure.add_trace(go.Scatter(x=x or [0], y=entropy or [normalised_entropy(inspection.option_probs)], name=name,
                                    mode="lines+markers", line={"color": colour, "dash": "dot"}, legendgroup=name,
                                    showlegend=not x), row=2, col=1)  # fmt: skip
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


COMPARISON_HEADERS = ["configuration", "model", "answer", "probability", "knowledge version", "entries", "steps",
                      "patches", "prefix ms", "ms / step", "total ms"]  # fmt: skip


def comparison_rows(results: Sequence[tuple[str, Inspection]]) -> list[list]:
    """One row per configuration: model, answer and its probability, knowledge used, reasoning size, timings."""
    return [[name, i.model, f"{i.answer}. {i.answer_text}", round(i.option_probs[i.answer], 3),
             "" if i.knowledge_version is None else i.knowledge_version, len(i.knowledge), len(i.steps),
             len(i.injected), round(i.timings.prefix_ms), round(i.timings.mean_step_ms, 1), round(i.timings.total_ms)]
            for name, i in results]  # fmt: skip


def anomaly_overlay(image: Image.Image, evidence) -> Image.Image:
    """The visual memory's calibrated anomaly map over the image, with the peak region's box."""
    overlay = attention_overlay(image, evidence.anomaly_map.tolist(), alpha=0.6)
    ImageDraw.Draw(overlay).rectangle(evidence.box, outline=(255, 255, 255), width=max(2, max(image.size) // 160))
    return overlay


def anomaly_markdown(evidence) -> str:
    """Verdict, calibrated score and region of the visual memory's evidence."""
    if evidence is None:
        return "_Visual memory: no normal exemplars for this category (or disabled)._"
    return (f"**Visual memory:** {evidence.verdict} (score {evidence.score:.2f}, raw {evidence.raw_score:.3f}) · "
            f"most anomalous region: {evidence.region}")  # fmt: skip
