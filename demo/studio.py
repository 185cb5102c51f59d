"""Gradio Blocks layout of Reason-IAD Studio: wiring only; rendering lives in the pure modules beside it.

`build_studio(config)` returns the Blocks; `app.py` launches it with `launch_options(config)`.
"""

from __future__ import annotations

import gradio as gr

from demo.gallery import GalleryItem, load_gallery, mask_annotations, questions_markdown
from reason_iad import __version__
from reason_iad.config import DEFAULT_MODEL, AppConfig
from reason_iad.paths import EXAMPLES_DIR

CSS = """
#header { margin-bottom: 0.5rem; }
"""


def model_banner(config: AppConfig) -> str:
    """One line naming the active model, and saying plainly what the default is."""
    backend = config.backend
    if backend.model == DEFAULT_MODEL:
        what = "the embedded default — a small demonstration model trained on synthetic data"
    else:
        what = f"`{backend.model}` (quantization: {backend.quantization}, device: {backend.device})"
    return f"Active model: {what}."


def build_studio(config: AppConfig, examples: list[GalleryItem] | None = None) -> gr.Blocks:
    """The studio's Blocks for `config`; `examples` defaults to the committed gallery."""
    items = load_gallery(EXAMPLES_DIR) if examples is None else examples
    with gr.Blocks(title="Reason-IAD Studio") as studio:
        gr.Markdown(
            f"# Reason-IAD Studio\nKnowledge-guided latent reasoning for explainable industrial anomaly "
            f"detection · v{__version__}\n\n{model_banner(config)}",
            elem_id="header",
        )
        with gr.Row():
            gallery = gr.Gallery(
                value=[(str(item.image), item.caption) for item in items],
                label=f"Example gallery ({len(items)} images)",
                columns=6,
                height=420,
                allow_preview=False,
                elem_id="example-gallery",
            )
            with gr.Column():
                ground_truth = gr.AnnotatedImage(label="Selected example with its ground-truth mask")
                questions = gr.Markdown("_Pick an example to see its ground truth and suggested questions._")

        def show_example(event: gr.SelectData) -> tuple:
            item = items[event.index]
            return (str(item.image), mask_annotations(item)), questions_markdown(item)

        gallery.select(show_example, outputs=[ground_truth, questions], api_visibility="private")
    return studio


def launch_options(config: AppConfig) -> dict:
    """Keyword arguments for `Blocks.launch` (Gradio 6 takes theme and css here)."""
    return {
        "server_name": config.studio.host,
        "server_port": config.studio.port,
        "share": config.studio.share,
        "css": CSS,
        "theme": gr.themes.Soft(),
        "allowed_paths": [str(EXAMPLES_DIR)],
        "show_error": False,
    }
