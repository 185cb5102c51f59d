"""Reason-IAD Studio: assembles the tabs of `demo/tabs/` into one Gradio Blocks; no layout or wiring of its own.

`build_studio(config, pipeline)` returns the Blocks; `app.py` loads the pipeline and launches with
`launch_options(config)`. Public API endpoints: `/inspect`, `/search_knowledge`, `/add_knowledge`.
"""

from __future__ import annotations

import os

import gradio as gr

from demo.annotation import AnnotationHandlers
from demo.comparison import CompareHandlers
from demo.gallery import GalleryItem, load_gallery
from demo.handlers import StudioHandlers
from demo.tabs.annotate import annotate_tab
from demo.tabs.compare import compare_tab
from demo.tabs.inspect import inspect_tab
from demo.tabs.knowledge import knowledge_tab
from reason_iad import __version__
from reason_iad.config import DEFAULT_MODEL, AppConfig
from reason_iad.paths import EXAMPLES_DIR

CSS = """
#header { margin-bottom: 0; }
#header h2 { margin: 0 0 0.2rem 0; }
#evidence table { font-size: 0.8rem; }
#preset .wrap { flex-wrap: nowrap; }
.status { font-size: 0.9rem; }
"""


def model_banner(config: AppConfig) -> str:
    """One line naming the active model once, and saying plainly what the default is."""
    backend = config.backend
    if backend.model == DEFAULT_MODEL:
        return (
            "Model: **embedded** — a small demonstration model trained on synthetic data "
            "(start the studio with `--model <folder>` for a real one)"
        )
    return f"Model: **{backend.model}** ({backend.quantization}, {backend.device})"


def build_studio(
    config: AppConfig,
    pipeline=None,
    examples: list[GalleryItem] | None = None,
    curators: set[str] | None = None,
    auth_required: bool = False,
) -> gr.Blocks:
    """The studio's Blocks; without a pipeline only the gallery is shown (no model loaded).

    Args:
        config: The app's configuration (the reasoning controls start from `config.reasoning`).
        pipeline: The loaded `Pipeline`, or None for a gallery-only page.
        examples: The gallery (default: the committed `examples/`).
        curators: User names allowed to write; empty: any logged-in user when auth is configured.
        auth_required: Password logins are configured (`--auth`): writes need a logged-in curator.
    """
    items = load_gallery(EXAMPLES_DIR) if examples is None else examples
    oauth = bool(os.environ.get("OAUTH_CLIENT_ID"))  # a Space with `hf_oauth: true`: sign in with Hugging Face
    handlers = StudioHandlers(pipeline, items, curators, auth_required or oauth) if pipeline is not None else None
    with gr.Blocks(title="Reason-IAD Studio") as studio:
        if oauth:
            gr.LoginButton()
        gr.Markdown(
            f"## Reason-IAD Studio <small>v{__version__} · knowledge-guided latent reasoning for explainable "
            f"industrial anomaly detection</small>\n{model_banner(config)}",
            elem_id="header",
        )
        last_answer, last_run = gr.State(""), gr.State(None)  # the Inspect tab's latest answer and run
        with gr.Tabs():
            with gr.Tab("Inspect", id="inspect"):
                choices = inspect_tab(config, handlers, items, last_answer, last_run)
            if handlers is not None and pipeline.store is not None:
                with gr.Tab("Knowledge", id="knowledge"):
                    knowledge_tab(handlers, choices)
            if handlers is not None:
                with gr.Tab("Annotate", id="annotate"):
                    annotate_tab(AnnotationHandlers(handlers), last_answer, last_run)
                with gr.Tab("Compare", id="compare"):
                    compare_tab(CompareHandlers(handlers), choices)
    return studio


def launch_options(config: AppConfig, auth: list[tuple[str, str]] | None = None) -> dict:
    """Keyword arguments for `Blocks.launch` (Gradio 6 takes theme and css here)."""
    return {
        "server_name": config.studio.host,
        "server_port": config.studio.port,
        "share": config.studio.share,
        "css": CSS,
        "theme": gr.themes.Soft(),
        "allowed_paths": [str(EXAMPLES_DIR)],
        "show_error": True,
        "auth": auth or None,
    }
