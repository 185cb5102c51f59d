"""The studio's Annotate and Compare tabs (layout and wiring; logic in `handlers.WorkbenchHandlers`)."""

from __future__ import annotations

import gradio as gr

from demo import render
from demo.handlers import ANY_CATEGORY, WorkbenchHandlers
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

    def save_annotation(value, label_, dataset_, category_, defect_, note_, answer_, corrected_, template_,
                        request: gr.Request):  # fmt: skip
        return work.save_annotation(value, label_, dataset_, category_, defect_, note_, answer_, corrected_,
                                    template_, request.username)  # fmt: skip

    last_answer.change(lambda answer: answer or "", last_answer, model_answer, api_visibility="private")
    save.click(guarded(save_annotation), [editor, label, dataset, category, defect, note, model_answer, corrected,
                                          as_template], status, api_visibility="private",
               concurrency_id="kb-write", concurrency_limit=1).then(
        guarded(work.annotation_rows), None, annotations, api_visibility="private")  # fmt: skip
    export.click(guarded(work.export_annotations), None, download, api_visibility="private")


def compare_tab(work: WorkbenchHandlers, guarded, choices: list[str]) -> None:
    """The same image and question under up to four modes, side by side."""
    with gr.Row():
        with gr.Column(scale=2):
            image = gr.Image(type="pil", label="Image", height=260)
            category = gr.Dropdown(choices, value=ANY_CATEGORY, label="Category")
            question = gr.Textbox(label="Question (empty: MMAD's anomaly question)")
            options = gr.Textbox(label="Options, one per line", lines=3)
            modes = gr.CheckboxGroup(list(MODES), value=["plain", "full"], label="Configurations (up to 4)")
            steps = gr.Slider(1, 30, value=8, step=1, label="Steps (latent modes)")
            latents = gr.Slider(1, 8, value=4, step=1, label="Latent tokens")
            run = gr.Button("Compare", variant="primary")
        with gr.Column(scale=3):
            curves = gr.Plot(label="Reward per step, shared axes")
            table = gr.Dataframe(headers=["configuration", "answer", "probability", "steps", "patches", "total ms"],
                                 interactive=False)  # fmt: skip

    def compare(image_, choice, question_, options_, modes_, steps_, latents_):
        results = work.compare(image_, choice, question_, options_, modes_, int(steps_), int(latents_))
        return render.comparison_figure(results), render.comparison_rows(results)

    run.click(guarded(compare), [image, category, question, options, modes, steps, latents], [curves, table],
              api_visibility="private", concurrency_id="model", concurrency_limit=1)  # fmt: skip
