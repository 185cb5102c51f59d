"""The Annotate tab: open an image, paint its defect, correct the model, save; export as MMAD, MVTec AD or COCO.

Saving and exporting check the curator server-side (`AnnotationHandlers` through `StudioHandlers.curator`).
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from gradio.context import get_blocks_context

from demo.annotation import PREFILLS, AnnotationHandlers, correction_editor, inspected_category
from demo.common import KNOWLEDGE_WRITE, author_of, guarded
from demo.handlers import uploaded_image
from reason_iad.exports import EXPORT_FORMATS


@dataclass(frozen=True)
class AnnotationForm:
    """The Annotate tab's components."""

    fields: tuple  # editor, label, dataset, category, defect, note, model answer, corrected, as template
    model_answer: gr.Textbox
    save: gr.Button
    status: gr.Markdown
    annotations: gr.Dataframe
    export: gr.Button
    download: gr.File
    export_format: gr.Radio
    opener: gr.Image
    prefill: gr.Radio
    open_last: gr.Button


def annotate_tab(work: AnnotationHandlers, last_answer: gr.State, last_run: gr.State) -> None:
    """Build and wire the Annotate tab; `last_answer` ("A. Yes.") and `last_run` are the Inspect tab's latest."""
    form = _layout()

    def save_annotation(
        value,
        label,
        dataset,
        category,
        defect,
        note,
        answer,
        corrected,
        as_template,
        request: gr.Request,
        profile: gr.OAuthProfile | None,
    ):
        author = author_of(request, profile)
        return work.save_annotation(
            value, label, dataset, category, defect, note, answer, corrected, as_template, author
        )

    def export_annotations(fmt, request: gr.Request, profile: gr.OAuthProfile | None):
        return work.export_annotations(fmt, username=author_of(request, profile))

    def open_image(value):
        """The uploaded image, decoded by the project's safe loader, as the editor's background."""
        image = uploaded_image(value, "image to annotate")
        return None if image is None else {"background": image, "layers": [], "composite": image}

    def copy_answer(answer):
        return answer or ""

    private = {"api_visibility": "private"}
    last_answer.change(copy_answer, last_answer, form.model_answer, **private)
    form.save.click(guarded(save_annotation), list(form.fields), form.status, **private, **KNOWLEDGE_WRITE).then(
        guarded(work.annotation_rows), None, form.annotations, **private
    )
    form.export.click(guarded(export_annotations), form.export_format, form.download, **private)
    page = get_blocks_context().root_block  # the table lists the stored annotations from the first page load
    page.load(guarded(work.annotation_rows), None, form.annotations, **private)
    form.opener.upload(guarded(open_image), form.opener, form.fields[0], preprocess=False, **private)

    def open_last(run, source):
        """The last inspection's image with a pre-filled mask, its label, category and the model's answer."""
        value = correction_editor(run, source)
        label = "defective" if value["layers"] else "normal"
        answer = f"{run.inspection.answer}. {run.inspection.answer_text}" if run.inspection else ""
        dataset, category = inspected_category(run)
        return value, label, dataset or "Annotations", category, answer

    editor, label, dataset, category = form.fields[:4]
    form.open_last.click(
        guarded(open_last),
        [last_run, form.prefill],
        [editor, label, dataset, category, form.model_answer],
        **private,
    )


def _layout() -> AnnotationForm:
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row(equal_height=True):
                prefill = gr.Radio(
                    list(PREFILLS), value=PREFILLS[0], label="Correct the last inspection: pre-fill the mask from"
                )
                open_last = gr.Button("Open the last inspection", elem_id="open-last")
            opener = gr.Image(
                label="Open an image to annotate (decoded safely, then painted below)",
                type="filepath",
                sources=["upload", "clipboard"],
                height=140,
            )
            editor = gr.ImageEditor(
                sources=(),  # uploads go through `opener`: Gradio never decodes an upload itself
                type="pil",
                label="Image — paint over the defect (brush)",
                elem_id="annotation-editor",
                height=420,
                brush=gr.Brush(colors=["#ff0000"], default_size=12),
            )
        with gr.Column(scale=2):
            label = gr.Radio(["normal", "defective"], value="defective", label="Label")
            dataset = gr.Textbox(value="Annotations", label="Dataset")
            category = gr.Textbox(label="Category", elem_id="annotate-category")
            defect = gr.Textbox(label="Defect type (for defective images)", elem_id="annotate-defect")
            note = gr.Textbox(label="Note", lines=2)
            model_answer = gr.Textbox(label="Model's answer of the last inspection", interactive=False)
            corrected = gr.Textbox(label="Correct answer (if the model was wrong)")
            as_template = gr.Checkbox(label="Also use this normal image as a one-shot template")
            save = gr.Button("Save annotation", variant="primary", elem_id="annotate-save")
            status = gr.Markdown("", elem_classes="status", elem_id="annotate-status")
    annotations = gr.Dataframe(
        headers=["id", "dataset", "category", "label", "defect", "author", "created", "mask"],
        interactive=False,
        label="Annotations",
        elem_id="annotations-table",
    )
    with gr.Row():
        export_format = gr.Radio(
            [(f.label, f.name) for f in EXPORT_FORMATS.values()],
            value="mmad",
            label="Export format",
            elem_id="export-format",
        )
        export = gr.Button("Export (zip)", elem_id="export-zip")
        download = gr.File(label="Download", elem_id="export-download")
    fields = (editor, label, dataset, category, defect, note, model_answer, corrected, as_template)
    return AnnotationForm(
        fields, model_answer, save, status, annotations, export, download, export_format, opener, prefill, open_last
    )
