"""The Inspect tab: a query image (uploaded or from the gallery), a question and the reasoning controls; the run.

The run streams the pipeline's typed events through `demo.events.event_outputs` (dict outputs, nothing by
position). Its public endpoint `/inspect` takes named parameters: `image`, `category`, `question`, `options`,
`template`, `auto_template`, `pinned` and the reasoning controls (`mode`, `num_latent_tokens`, ..., one
`<reward>_reward_weight` per reward of `reasoning.reward.REWARDS`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import gradio as gr

from demo import render
from demo.common import MODEL_RUN, gpu, guarded, on_zero_gpu
from demo.events import InspectRun, InspectView, event_outputs, patch_view, run_view, starting_outputs
from demo.gallery import GalleryItem, mask_annotations, questions_markdown
from demo.handlers import (
    ANY_CATEGORY,
    PRESET_FIELDS,
    PRESETS,
    ReasoningSettings,
    StudioHandlers,
    category_choices,
    preset_of,
    uploaded_image,
    weight_control,
)
from demo.overlay import COLORMAPS, LAYERS, Look
from demo.product_panel import product_panel
from demo.zerogpu import estimate_seconds, too_long
from reason_iad.config import MODES, ReasoningConfig, choices
from reason_iad.errors import UserError
from reason_iad.reasoning.reward import REWARDS


@dataclass(frozen=True)
class InspectForm:
    """The Inspect tab's input components."""

    image: gr.Image
    gallery: gr.Gallery
    ground_truth: gr.AnnotatedImage
    suggestions: gr.Markdown
    category: gr.Dropdown
    question: gr.Textbox
    options: gr.Textbox
    template: gr.Image
    auto_template: gr.Checkbox
    settings: dict[str, gr.components.Component]  # keyed by control name (`ReasoningSettings.controls`)
    pins: gr.CheckboxGroup
    pin_note: gr.Markdown
    preset: gr.Radio
    run: gr.Button
    stop: gr.Button


def inspect_tab(
    config, handlers: StudioHandlers | None, items: list[GalleryItem], last_answer: gr.State, last_run: gr.State
) -> list[str]:
    """Build and wire the Inspect tab (without handlers: the gallery only); returns its category choices."""
    pairs = sorted({(i.dataset, i.category) for i in items})
    if handlers is not None and handlers.pipeline.store is not None:
        from reason_iad.knowledge.search import categories

        pairs = categories(handlers.pipeline.store)
    choices = category_choices(pairs)
    with gr.Row(equal_height=False):
        with gr.Column(scale=4, min_width=360):
            form = _form(config.reasoning, items, choices)
            if handlers is not None and handlers.pipeline.exemplars is not None:
                product_panel(handlers, form.category, choices)
        with gr.Column(scale=7):
            view, look = _view(last_answer, last_run)
    _wire_gallery(form, items, choices)
    _wire_presets(form)
    if handlers is not None:
        _wire_run(form, view, look, handlers)
    return choices


def _form(defaults: ReasoningConfig, items: list[GalleryItem], choices: list[str]) -> InspectForm:
    """The left column: the query, what to ask and how, and the run buttons above the collapsible rest."""
    image = gr.Image(type="filepath", label="Query image", height=250, elem_id="query-image")
    with gr.Row():
        category = gr.Dropdown(choices, value=ANY_CATEGORY, label="Category", scale=1, min_width=130)
        start = ReasoningSettings.from_config(defaults)
        preset = gr.Radio([*PRESETS, "custom"], value=preset_of(start), label="Preset", scale=3, elem_id="preset")
    with gr.Row():
        run = gr.Button("Inspect", variant="primary", elem_id="run")
        stop = gr.Button("Stop", elem_id="stop")
    pins = gr.CheckboxGroup([], label="Knowledge to use (untick to leave out)", elem_id="knowledge-pins")
    pin_note = gr.Markdown("", elem_classes="status")
    with gr.Accordion("Example gallery", open=True):
        gallery = gr.Gallery(
            value=[(str(i.image), i.caption) for i in items],
            columns=8,
            height=150,
            label=f"Example gallery ({len(items)} images)",
            show_label=False,
            allow_preview=False,
            elem_id="example-gallery",
        )
    with gr.Accordion("Question (empty: MMAD's anomaly question)", open=False, elem_id="question-box"):
        question = gr.Textbox(label="Question", elem_id="question")
        options = gr.Textbox(label="Options, one per line (A. ..., B. ...)", lines=3, elem_id="options")
    with gr.Accordion("Ground truth and suggested questions", open=False):
        ground_truth = gr.AnnotatedImage(label="Ground truth of the selected example", height=200)
        suggestions = gr.Markdown("_Pick an example to see its ground truth and suggested questions._")
    with gr.Accordion("One-shot template", open=False):
        template = gr.Image(type="filepath", label="Normal template (optional)", height=160)
        auto_template = gr.Checkbox(True, label="Otherwise use the category's nearest normal exemplar")
    with gr.Accordion("Reasoning settings", open=False):
        settings = reasoning_controls(start)
    return InspectForm(
        image,
        gallery,
        ground_truth,
        suggestions,
        category,
        question,
        options,
        template,
        auto_template,
        settings,
        pins,
        pin_note,
        preset,
        run,
        stop,
    )


def reasoning_controls(start: ReasoningSettings) -> dict[str, gr.components.Component]:
    """One control per setting, keyed by its control name (the API parameter's name; a slider per reward)."""
    controls = {
        "mode": gr.Radio(list(MODES), value=start.mode, label="Mode"),
        "num_latent_tokens": gr.Slider(1, 16, value=start.num_latent_tokens, step=1, label="Latent tokens"),
        "num_steps": gr.Slider(1, 40, value=start.num_steps, step=1, label="Steps"),
        "patches_per_step": gr.Slider(0, 8, value=start.patches_per_step, step=1, label="Patches per step"),
    }
    for name, reward in REWARDS.items():
        controls[weight_control(name)] = gr.Slider(0, 2, value=start.reward_weights[name], label=reward.label)
    controls |= {
        "readout": gr.Radio(list(choices(ReasoningConfig, "readout")), value=start.readout, label="Answer read-out"),
        "evidence": gr.Radio(
            list(choices(ReasoningConfig, "evidence")),
            value=start.evidence,
            label="Show the visual memory's evidence to the model",
        ),
        "injection_prior": gr.Radio(
            list(choices(ReasoningConfig, "injection_prior")),
            value=start.injection_prior,
            label="Patch injection prior",
        ),
    }
    return controls


def _view(last_answer: gr.State, last_run: gr.State) -> tuple[InspectView, dict]:
    """The right column: the explanation view beside the answer, the live plot beside the cited evidence.

    Returns the view and the explanation's look controls (layers, opacity, colormap, and the state they set).
    """
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            explanation = gr.Image(label="Explanation", height=290, elem_id="explanation", interactive=False)
            layers = gr.CheckboxGroup(
                list(LAYERS), value=list(Look().layers), show_label=False, container=False, elem_id="layers"
            )
            with gr.Row():
                opacity = gr.Slider(0, 1, value=Look().opacity, step=0.05, label="Heat opacity", min_width=90)
                colormap = gr.Dropdown(list(COLORMAPS), value=Look().colormap, label="Colormap", min_width=90)
                replay = gr.Slider(0, 1, value=0, step=1, label="Replay (step)", interactive=True, min_width=90)
        with gr.Column(scale=4, min_width=260):
            answer = gr.Markdown("_Pick an example or upload an image, then **Inspect**._", elem_id="answer")
            answer_plot = gr.Plot(show_label=False, elem_id="answer-plot")
            anomaly_note = gr.Markdown("", elem_classes="status")
            grounding = gr.Markdown("", elem_id="grounding")
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            plot = gr.Plot(show_label=False, elem_id="reasoning-plot")
            details = gr.Markdown("", elem_classes="status")
            with gr.Row():
                card_button = gr.Button("Run card (JSON)", size="sm", elem_id="run-card-button", scale=1)
                card_file = gr.File(label="Run card: replay with `reason-iad infer --replay`", scale=3)
        with gr.Column(scale=4, min_width=260):
            evidence = gr.Dataframe(
                headers=render.EVIDENCE_HEADERS,
                label="Cited evidence (click a patch to highlight it)",
                interactive=False,
                wrap=True,
                column_widths=["24%", "56%", "20%"],
                max_height=240,
                elem_id="evidence",
            )
    view = InspectView(
        plot,
        explanation,
        replay,
        answer_plot,
        answer,
        evidence,
        grounding,
        anomaly_note,
        details,
        gr.State(None),
        last_answer,
        last_run,
    )
    controls = {"layers": layers, "opacity": opacity, "colormap": colormap, "state": gr.State(Look())}
    return view, controls | {"card_button": card_button, "card_file": card_file}


def _wire_presets(form: InspectForm) -> None:
    """A preset sets the steps, latents and patches; moving any of them by hand makes the preset 'custom'."""
    tuned = [form.settings[name] for name in PRESET_FIELDS]

    def apply(preset):
        values = PRESETS.get(preset)
        return [gr.skip()] * len(tuned) if values is None else [values[name] for name in PRESET_FIELDS]

    def follow(*values):
        settings = dict(zip(PRESET_FIELDS, values, strict=True))
        return next((name for name, preset in PRESETS.items() if preset == settings), "custom")

    form.preset.input(apply, form.preset, tuned, api_visibility="private")
    for control in tuned:
        control.input(follow, tuned, form.preset, api_visibility="private")


def _wire_gallery(form: InspectForm, items: list[GalleryItem], choices: list[str]) -> None:
    def pick_example(event: gr.SelectData):
        item = items[event.index]
        first = next((q for q in item.questions if q.type != "Anomaly Detection"), None)
        choice = f"{item.dataset} / {item.category}"
        return {
            form.image: str(item.image),
            form.ground_truth: (str(item.image), mask_annotations(item)),
            form.suggestions: questions_markdown(item),
            form.category: choice if choice in choices else ANY_CATEGORY,
            form.question: first.question if first else "",
            form.options: "\n".join(f"{k}. {v}" for k, v in first.options.items()) if first else "",
        }

    outputs = [form.image, form.ground_truth, form.suggestions, form.category, form.question, form.options]
    form.gallery.select(pick_example, outputs=outputs, api_visibility="private")


def _wire_run(form: InspectForm, view: InspectView, look: dict, handlers: StudioHandlers) -> None:
    offered = _wire_pins(form, handlers)

    model = handlers.pipeline.config.backend.model

    def gpu_seconds(*_, **named) -> int:  # ZeroGPU asks before each call, with the call's own arguments
        return estimate_seconds(named, model)

    @gpu(gpu_seconds)
    @guarded
    def inspect(  # the `/inspect` endpoint: its parameters' names are the API's (None: optional there)
        image,
        category,
        question=None,
        options=None,
        template=None,
        auto_template=True,
        pinned=None,
        offered=None,
        look=None,
        **settings,
    ):
        if on_zero_gpu() and (why := too_long(settings, model)):
            raise UserError(why)
        yield starting_outputs(view)
        settings = ReasoningSettings.from_controls(settings)
        query = uploaded_image(image, "query image")  # None: `handlers.inspect` asks for an image
        truth = handlers.ground_truth(query) if query is not None else None
        asked = (category, question, options, template)
        run = InspectRun(query, int(settings.num_steps), truth, look or Look(), asked=asked)
        pinned = None if not pinned or set(pinned) == set(offered or []) else pinned  # untouched: retrieve afresh
        stream = handlers.inspect(query, category, question, options, settings, template, auto_template, pinned)
        for event in stream:
            run = run.advance(event)
            yield event_outputs(event, view, run)

    named = {"image": form.image, "category": form.category, "question": form.question, "options": form.options}
    named |= {"template": form.template, "auto_template": form.auto_template}
    named |= form.settings | {"pinned": form.pins, "offered": offered}  # the order positional callers always used
    named["look"] = look["state"]  # session state: not an API parameter
    event = form.run.click(
        inspect,
        inputs_kwargs=named,
        outputs=view.components(),
        api_name="inspect",
        preprocess=False,
        **MODEL_RUN,
    )
    form.stop.click(None, cancels=[event], api_visibility="private")
    _wire_explanation(view, look)
    look["card_button"].click(guarded(handlers.run_card), view.run, look["card_file"], api_visibility="private")


def _wire_pins(form: InspectForm, handlers: StudioHandlers) -> gr.State:
    """The knowledge pins follow the image and category; returns the state holding the labels offered."""
    preview = guarded(handlers.preview_knowledge)
    offered = gr.State([])

    def refresh_pins(image, category):
        labels, selected, note = preview(image, category)
        return gr.update(choices=labels, value=selected), note, labels

    for trigger in (form.image.change, form.category.change):  # images are decoded by our loader, never by Gradio
        trigger(
            refresh_pins,
            [form.image, form.category],
            [form.pins, form.pin_note, offered],
            api_visibility="private",
            preprocess=False,
        )
    return offered


def _wire_explanation(view: InspectView, look: dict) -> None:
    """Layers, opacity, colormap, the replay slider and a click on a cited patch re-render the explanation view."""
    controls = [look["layers"], look["opacity"], look["colormap"]]

    def restyle(run: InspectRun | None, layers, opacity, colormap):
        chosen = Look.of(layers, opacity, colormap)
        if run is None:
            return chosen, None, gr.skip()
        run = dataclasses.replace(run, look=chosen)
        return chosen, run, run_view(run)

    def replay(run: InspectRun | None, upto):
        if run is None:
            return None, gr.skip()
        run = dataclasses.replace(run, upto=int(upto))
        return run, run_view(run)

    def highlight(run: InspectRun | None, event: gr.SelectData):
        return patch_view(run, event.row_value)

    for control in controls:
        control.change(
            restyle, [view.run, *controls], [look["state"], view.run, view.explanation], api_visibility="private"
        )
    view.replay.input(replay, [view.run, view.replay], [view.run, view.explanation], api_visibility="private")
    view.evidence.select(highlight, view.run, view.explanation, api_visibility="private")
