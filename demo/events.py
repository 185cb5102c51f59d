"""The Inspect tab's renderer: one typed inspection event -> Gradio's dict outputs `{component: value}`.

`Pipeline.inspect_stream` yields `AnomalyEvidence` (when the visual memory was consulted), each `ReasoningStep`,
then the `Inspection`. `event_outputs` maps one of them, with the run so far (`InspectRun`), onto the components of
an `InspectView`; a component it leaves out keeps its value, so nothing depends on output positions. Pure: no I/O,
no Gradio state; tested with plain objects as components.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from demo import render
from demo.ground_truth import GroundTruth, patches_on_defect
from demo.overlay import Look, explanation_view
from reason_iad.types import AnomalyEvidence, InjectedPatch, Inspection, InspectionEvent, ReasoningStep

STARTING = "⏳ Retrieving knowledge, consulting the visual memory and running the prefix pass…"


@dataclass(frozen=True)
class InspectView:
    """The Inspect tab's output components, by role (any hashable objects serve as components in tests)."""

    plot: Any  # reward and entropy per step
    explanation: Any  # the query image under the chosen layers (anomaly map, attention, kept patches, ground truth)
    replay: Any  # the replay slider
    answer_plot: Any  # answer distribution
    answer: Any  # answer markdown (progress while streaming)
    evidence: Any  # the cited evidence table
    grounding: Any  # "N of M kept patches on the defect"
    anomaly_note: Any  # the visual memory's verdict, score and region
    details: Any  # timings and the model, one small line
    run: Any  # gr.State holding the `InspectRun` (for the replay slider and the evidence table's clicks)
    last_answer: Any  # gr.State: "A. Yes." for the Annotate tab
    last_run: Any  # gr.State: the finished `InspectRun`, for the Annotate tab's correction loop

    def components(self) -> list:
        """Every output component, for an event's `outputs=`."""
        return [getattr(self, f.name) for f in dataclasses.fields(self)]


@dataclass(frozen=True, eq=False)
class InspectRun:
    """One run as far as it has streamed: what the renderer needs beyond the event itself."""

    query: Image.Image  # the decoded query image (patch boxes are in its pixels)
    num_steps: int  # steps asked for (the plot's x range)
    truth: GroundTruth | None = None  # the image's ground truth, when it is a gallery example or annotated
    look: Look = Look()  # how the explanation view is drawn
    steps: tuple[ReasoningStep, ...] = ()
    inspection: Inspection | None = None
    anomaly: AnomalyEvidence | None = None  # the visual memory's map, when it was consulted
    upto: int | None = None  # the replay slider's step (None: the latest)
    asked: tuple = ()  # (category choice, question, options, template) as the form sent them (for the run card)

    @property
    def mask(self) -> np.ndarray | None:
        """The ground-truth defect mask [H, W], when known."""
        return self.truth.mask if self.truth is not None else None

    def advance(self, event: InspectionEvent) -> InspectRun:
        """The run after `event`."""
        if isinstance(event, ReasoningStep):
            return dataclasses.replace(self, steps=(*self.steps, event))
        if isinstance(event, Inspection):
            return dataclasses.replace(self, steps=event.steps, inspection=event)
        if isinstance(event, AnomalyEvidence):
            return dataclasses.replace(self, anomaly=event)
        return self


def run_view(run: InspectRun, highlight: InjectedPatch | None = None) -> Image.Image:
    """The explanation view of a run as far as it went (or as it stood at the replay step `run.upto`)."""
    attention = run.inspection.attention_map if run.inspection is not None else ()
    if run.inspection is not None and run.upto is None:
        patches, new = run.inspection.injected, ()
    else:
        shown = [s for s in run.steps if run.upto is None or s.step <= run.upto]
        patches, new = (shown[-1].injected, shown[-1].new_patches) if shown else ((), ())
    return explanation_view(run.query, run.look, run.anomaly, attention, patches, new, run.mask, highlight)


def starting_outputs(view: InspectView) -> dict:
    """Before the first event: say what is happening and clear the previous answer's evidence."""
    return {view.answer: STARTING, view.evidence: [], view.grounding: ""}


def event_outputs(event: InspectionEvent, view: InspectView, run: InspectRun) -> dict:
    """The outputs one event changes; `run` already includes the event (`InspectRun.advance`)."""
    if isinstance(event, AnomalyEvidence):
        return {view.explanation: run_view(run), view.anomaly_note: render.anomaly_markdown(event), view.run: run}
    if isinstance(event, ReasoningStep):
        return _step_outputs(event, view, run)
    if isinstance(event, Inspection):
        return _final_outputs(event, view, run)
    raise TypeError(f"not an inspection event: {type(event).__name__}")


def _step_outputs(step: ReasoningStep, view: InspectView, run: InspectRun) -> dict:
    return {
        view.plot: render.reasoning_figure(run.steps, run.num_steps),
        view.explanation: run_view(run),
        view.replay: gr.update(maximum=max(len(run.steps), 1)),
        view.answer_plot: render.answer_figure(step.option_probs),
        view.answer: f"Step {step.step} of {run.num_steps}…",
        view.run: run,
    }


def _final_outputs(inspection: Inspection, view: InspectView, run: InspectRun) -> dict:
    patches_hit, anomaly_hit = defect_hits(inspection, run.mask)
    last_step = inspection.steps[-1].step if inspection.steps else 0
    outputs = {
        view.plot: render.reasoning_figure(inspection.steps, run.num_steps if inspection.steps else 1),
        view.explanation: run_view(run),
        view.replay: gr.update(maximum=max(last_step, 1), value=last_step),
        view.answer_plot: render.answer_figure(inspection.option_probs),
        view.answer: render.answer_markdown(inspection),
        view.details: render.run_details(inspection),
        view.evidence: render.evidence_rows(inspection.evidence, patches_hit, anomaly_hit),
        view.grounding: render.grounding_markdown(run.truth, patches_hit or [], anomaly_hit),
        view.run: run,
        view.last_answer: f"{inspection.answer}. {inspection.answer_text}",
        view.last_run: run,
    }
    if inspection.anomaly is None:  # no `AnomalyEvidence` came: say so instead of the previous run's verdict
        outputs[view.anomaly_note] = render.anomaly_markdown(None)
    return outputs


def defect_hits(inspection: Inspection, mask: np.ndarray | None) -> tuple[list[bool] | None, bool | None]:
    """(per kept patch: on the defect?, the anomaly map's box on the defect?); None where no mask is known."""
    if mask is None or not mask.any():
        return None, None
    patches_hit = patches_on_defect(mask, [p.box for p in inspection.injected])
    anomaly_hit = patches_on_defect(mask, [inspection.anomaly.box])[0] if inspection.anomaly is not None else None
    return patches_hit, anomaly_hit


def highlighted_patch(run: InspectRun | None, row) -> InjectedPatch | None:
    """The kept patch an evidence-table row (its values) cites, None for any other row or before a run ends."""
    if run is None or run.inspection is None:
        return None
    return render.patch_of_row(run.inspection.evidence, row)


def patch_view(run: InspectRun | None, row=None) -> Image.Image | None:
    """The final explanation view with the patch of an evidence-table row emphasised (the others thinned out)."""
    if run is None or run.inspection is None:
        return None
    return run_view(dataclasses.replace(run, upto=None), highlighted_patch(run, row))
