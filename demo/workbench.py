"""The studio's Annotate and Compare tabs (layout and wiring; logic in `handlers.WorkbenchHandlers`)."""

from __future__ import annotations

import gradio as gr

from demo import render
from demo.comparison import LATEST, CompareHandlers, CompareSlot, parse_version
from demo.handlers import ANY_CATEGORY, WorkbenchHandlers, uploaded_image
from reason_iad.config import MODES


def annotate_tab(work: WorkbenchHandlers, guarded, last_answer: gr.State) -> None:
    """Label an image, paint its defect, correct the model, save; export everything as an MMAD dataset."""
    with gr.Row():
        with gr.Column(scale=3):
            editor = gr.ImageEditor(type="pil", label="Image — paint over the defect (brush)", height=420,
                                    brush=gr.Brush(colors=["#ff0000"], default_size=12))  # fmt: skip
        with gr.Column(scale=2):
            label = gr.Radio(["normal", "defective"], value="defective", label="Label")
            dataset = gr.Textbox(value="Annotations", label="Dataset")
            category = gr.Textbox(label="Category")
            defect = gr.Textbox(label="Defect type (for defective images)")
            note = gr.Textbox(label="Note", lines=2)
            model_answer = gr.Textbox(label="Model's answer of the last inspection", interactive=False)
            corrected = gr.Textbox(label="Correct answer (if the model was wrong)")
            as_template = gr.Checkbox(label="Also use this normal image as a one-shot template")
            save = gr.Button("Save annotation", variant="primary")
            status = gr.Markdown("", elem_classes="status")
    annotations = gr.Dataframe(headers=["id", "dataset", "category", "label", "defect", "author", "created", "mask"],
                               interactive=False, label="Annotations")  # fmt: skip
    with gr.Row():
        export = gr.Button("Export as MMAD dataset (zip)")
        download = gr.File(label="Download")

    from demo.studio import author_of

    def save_annotation(value, label_, dataset_, category_, defect_, note_, answer_, corrected_, template_,
                        request: gr.Request, profile: gr.OAuthProfile | None):  # fmt: skip
        return work.save_annotation(value, label_, dataset_, category_, defect_, note_, answer_, corrected_,
                                    template_, author_of(request, profile))  # fmt: skip

    def export_annotations(request: gr.Request, profile: gr.OAuthProfile | None):
        return work.export_annotations(author_of(request, profile))

    last_answer.change(lambda answer: answer or "", last_answer, model_answer, api_visibility="private")
    save.click(guarded(save_annotation), [editor, label, dataset, category, defect, note, model_answer, corrected,
                                          as_template], status, api_visibility="private",
               concurrency_id="kb-write", concurrency_limit=1).then(
        guarded(work.annotation_rows), None, annotations, api_visibility="private")  # fmt: skip
    export.click(guarded(export_annotations), None, download, api_visibility="private")


def compare_tab(compare: CompareHandlers, guarded, choices: list[str]) -> None:
    """The same image and question under up to four configurations: mode, knowledge version and model each."""
    with gr.Row():
        with gr.Column(scale=2):
            image = gr.Image(type="filepath", label="Image", height=240)
            category = gr.Dropdown(choices, value=ANY_CATEGORY, label="Category")
            question = gr.Textbox(label="Question (empty: MMAD's anomaly question)")
            options = gr.Textbox(label="Options, one per line", lines=3)
            with gr.Row():
                steps = gr.Slider(1, 30, value=8, step=1, label="Steps (latent modes)")
                latents = gr.Slider(1, 8, value=4, step=1, label="Latent tokens")
        with gr.Column(scale=3):
            slots = []
            versions, models = compare.version_choices(), compare.model_names()
            for index, mode in enumerate(("plain", "full", "knowledge", "latent")):
                with gr.Row(equal_height=True):
                    use = gr.Checkbox(value=index < 2, label=f"#{index + 1}", min_width=60, scale=0)
                    slots += [use, gr.Dropdown(list(MODES), value=mode, label="mode", scale=1),
                              gr.Dropdown(versions, value=LATEST, label="knowledge version", scale=2),
                              gr.Dropdown(models, value=models[0], label="model", scale=2)]  # fmt: skip
            with gr.Row():
                refresh = gr.Button("Refresh versions and models", size="sm")
                run = gr.Button("Compare", variant="primary")
            with gr.Accordion("Load a second model", open=False):
                model_name = gr.Textbox(label="Local folder or Hugging Face id (hub ids need network access)")
                quantization = gr.Radio(["none", "4bit", "8bit"], value="none", label="Quantization")
                load = gr.Button("Load", size="sm")
                load_status = gr.Markdown("", elem_classes="status")
    curves = gr.Plot(label="Reward and answer entropy per step, shared axes")
    table = gr.Dataframe(headers=render.COMPARISON_HEADERS, interactive=False)

    def chosen(values) -> list[CompareSlot]:
        return [CompareSlot(mode, parse_version(version), "" if model == compare.active_name else model)
                for use, mode, version, model in zip(*[iter(values)] * 4, strict=True) if use]  # fmt: skip

    from demo.studio import author_of, gpu

    @gpu
    def run_comparison(image_, choice, question_, options_, steps_, latents_, *values):
        image_ = uploaded_image(image_, "image")  # decoded here, never by Gradio (preprocess=False: bombs)
        results = compare.compare(image_, choice, question_, options_, chosen(values), int(steps_), int(latents_))
        return render.comparison_figure(results), render.comparison_rows(results)

    def load_model(model, quantization_, request: gr.Request, profile: gr.OAuthProfile | None):
        return compare.load_model(model, quantization_, username=author_of(request, profile))

    def refreshed():
        versions_, models_ = compare.version_choices(), compare.model_names()
        return [update for _ in range(4) for update in (gr.update(choices=versions_), gr.update(choices=models_))]

    pickers = [c for i, c in enumerate(slots) if i % 4 in (2, 3)]
    run.click(guarded(run_comparison), [image, category, question, options, steps, latents, *slots],
              [curves, table], api_visibility="private", concurrency_id="model", concurrency_limit=1,
              preprocess=False)  # fmt: skip
    refresh.click(guarded(refreshed), None, pickers, api_visibility="private")
    load.click(guarded(load_model), [model_name, quantization], load_status, api_visibility="private",
               concurrency_id="model", concurrency_limit=1).then(
        guarded(refreshed), None, pickers, api_visibility="private")  # fmt: skip
