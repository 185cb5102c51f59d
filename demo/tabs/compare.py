"""The Compare tab: the same image and question under up to four configurations (mode, knowledge version, model).

Every configuration starts from the loaded configuration (`pipeline.config.reasoning`): the steps and latent
sliders show its values, and the reward weights, read-out, evidence and prior are its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from demo import render
from demo.common import MODEL_RUN, author_of, gpu, guarded, on_zero_gpu
from demo.comparison import LATEST, MAX_SLOTS, CompareHandlers, CompareSlot, parse_version
from demo.handlers import ANY_CATEGORY, uploaded_image
from demo.zerogpu import estimate_seconds, max_seconds
from reason_iad.config import MODES, ReasoningConfig
from reason_iad.errors import UserError

SLOT_MODES = ("plain", "full", "knowledge", "latent")


@dataclass(frozen=True)
class SlotControls:
    """The controls of one configuration."""

    use: gr.Checkbox
    mode: gr.Dropdown
    version: gr.Dropdown
    model: gr.Dropdown

    def slot(self, values: dict, studio_model: str) -> CompareSlot:
        """The configuration these controls hold in `values` (an event's {component: value})."""
        model = values[self.model]
        return CompareSlot(
            values[self.mode], parse_version(values[self.version]), "" if model == studio_model else model
        )


@dataclass(frozen=True)
class CompareForm:
    """The Compare tab's components."""

    image: gr.Image
    category: gr.Dropdown
    question: gr.Textbox
    options: gr.Textbox
    steps: gr.Slider
    latents: gr.Slider
    slots: list[SlotControls]
    refresh: gr.Button
    run: gr.Button
    model_name: gr.Textbox
    quantization: gr.Radio
    load: gr.Button
    load_status: gr.Markdown
    curves: gr.Plot
    table: gr.Dataframe

    def inputs(self) -> set:
        """Every input of a comparison, as a set: the handler receives {component: value}, nothing by position."""
        slots = {c for s in self.slots for c in (s.use, s.mode, s.version, s.model)}
        return {self.image, self.category, self.question, self.options, self.steps, self.latents} | slots

    def pickers(self) -> list:
        """The knowledge-version and model dropdowns of every slot."""
        return [c for s in self.slots for c in (s.version, s.model)]


def compare_tab(compare: CompareHandlers, choices: list[str]) -> None:
    """Build and wire the Compare tab."""
    form = _layout(compare, choices, compare.studio.pipeline.config.reasoning)

    def gpu_seconds(values: dict) -> int:  # every chosen configuration runs in the one GPU call
        settings = {"mode": "full", "num_steps": values[form.steps], "patches_per_step": 2}
        used = max(1, sum(bool(values[s.use]) for s in form.slots))
        return used * estimate_seconds(settings, compare.studio.pipeline.config.backend.model)

    @gpu(gpu_seconds)
    def run_comparison(values: dict):
        needed, allowed = gpu_seconds(values), max_seconds()
        if on_zero_gpu() and needed > allowed:
            raise UserError(
                f"these configurations would hold the GPU for about {needed} s, more than the "
                f"{allowed} s this Space allows: compare fewer of them or use fewer steps"
            )
        image = uploaded_image(values[form.image], "image")  # decoded here, never by Gradio (preprocess=False)
        chosen = [s.slot(values, compare.active_name) for s in form.slots if values[s.use]]
        steps, latents = int(values[form.steps]), int(values[form.latents])
        results = compare.compare(
            image, values[form.category], values[form.question], values[form.options], chosen, steps, latents
        )
        return render.comparison_figure(results), render.comparison_rows(results)

    def load_model(model, quantization, request: gr.Request, profile: gr.OAuthProfile | None):
        return compare.load_model(model, quantization, username=author_of(request, profile))

    def refreshed():
        versions, models = compare.version_choices(), compare.model_names()
        return {
            c: gr.update(choices=versions if c in {s.version for s in form.slots} else models) for c in form.pickers()
        }

    private = {"api_visibility": "private"}
    form.run.click(
        guarded(run_comparison), form.inputs(), [form.curves, form.table], preprocess=False, **private, **MODEL_RUN
    )
    form.refresh.click(guarded(refreshed), None, form.pickers(), **private)
    form.load.click(
        guarded(load_model), [form.model_name, form.quantization], form.load_status, **private, **MODEL_RUN
    ).then(guarded(refreshed), None, form.pickers(), **private)


def _layout(compare: CompareHandlers, choices: list[str], defaults: ReasoningConfig) -> CompareForm:
    with gr.Row():
        with gr.Column(scale=2):
            image = gr.Image(type="filepath", label="Image", height=240, elem_id="compare-image")
            category = gr.Dropdown(choices, value=ANY_CATEGORY, label="Category")
            question = gr.Textbox(label="Question (empty: MMAD's anomaly question)")
            options = gr.Textbox(label="Options, one per line", lines=3)
            with gr.Row():
                steps = gr.Slider(
                    1, max(30, defaults.num_steps), value=defaults.num_steps, step=1, label="Steps (latent modes)"
                )
                latents = gr.Slider(
                    1,
                    max(8, defaults.num_latent_tokens),
                    value=defaults.num_latent_tokens,
                    step=1,
                    label="Latent tokens",
                )
        with gr.Column(scale=3):
            slots = _slot_controls(compare)
            with gr.Row():
                refresh = gr.Button("Refresh versions and models", size="sm")
                run = gr.Button("Compare", variant="primary", elem_id="compare-run")
            with gr.Accordion("Load a second model", open=False):
                model_name = gr.Textbox(label="Local folder or Hugging Face id (hub ids need network access)")
                quantization = gr.Radio(["none", "4bit", "8bit"], value="none", label="Quantization")
                load = gr.Button("Load", size="sm")
                load_status = gr.Markdown("", elem_classes="status")
    curves = gr.Plot(label="Reward and answer entropy per step, shared axes", elem_id="compare-curves")
    table = gr.Dataframe(headers=render.COMPARISON_HEADERS, interactive=False, elem_id="compare-table")
    return CompareForm(
        image,
        category,
        question,
        options,
        steps,
        latents,
        slots,
        refresh,
        run,
        model_name,
        quantization,
        load,
        load_status,
        curves,
        table,
    )


def _slot_controls(compare: CompareHandlers) -> list[SlotControls]:
    versions, models = compare.version_choices(), compare.model_names()
    slots = []
    for index, mode in enumerate(SLOT_MODES[:MAX_SLOTS]):
        with gr.Row(equal_height=True):
            slots.append(
                SlotControls(
                    gr.Checkbox(value=index < 2, label=f"#{index + 1}", min_width=60, scale=0),
                    gr.Dropdown(list(MODES), value=mode, label="mode", scale=1),
                    gr.Dropdown(versions, value=LATEST, label="knowledge version", scale=2),
                    gr.Dropdown(models, value=models[0], label="model", scale=2),
                )
            )
    return slots
