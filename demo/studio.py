"""Gradio Blocks layout of Reason-IAD Studio: wiring only; logic in `handlers.py`, drawing in `render.py`.

`build_studio(config, pipeline)` returns the Blocks; `app.py` loads the pipeline and launches with
`launch_options(config)`. Public API endpoints: `/inspect`, `/search_knowledge`, `/add_knowledge`.
"""

from __future__ import annotations

import functools
import logging
import os

import gradio as gr

from demo import render
from demo.gallery import GalleryItem, load_gallery, mask_annotations, questions_markdown
from demo.handlers import ANY_CATEGORY, ReasoningSettings, StudioHandlers, category_choices, uploaded_image
from reason_iad import __version__
from reason_iad.config import DEFAULT_MODEL, MODES, AppConfig
from reason_iad.errors import UserError
from reason_iad.paths import EXAMPLES_DIR

LOG = logging.getLogger("reason_iad.studio")
CSS = """
#header { margin-bottom: 0.5rem; }
.status { font-size: 0.9rem; }
"""

try:  # ZeroGPU on Spaces; a no-op decorator elsewhere
    import spaces

    gpu = spaces.GPU(duration=120)
except ImportError:  # pragma: no cover - spaces is pinned

    def gpu(fn):
        """No ZeroGPU here: run as is."""
        return fn


def guarded(fn):
    """Turn `UserError` into a Gradio error message and anything else into a short, logged message."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            raise gr.Error(str(err), print_exception=False) from None
        except gr.Error:
            raise
        except Exception as err:  # noqa: BLE001 - the user sees a message, the log keeps the traceback
            LOG.exception("studio handler failed")
            raise gr.Error(f"Something went wrong ({type(err).__name__}); details are in the server log.") from None

    return wrapper


def author_of(request: gr.Request | None, profile: gr.OAuthProfile | None) -> str | None:
    """Who is signed in: the Hugging Face account (OAuth on a Space) or else the password login's user name."""
    if profile is not None:
        return profile.username
    return getattr(request, "username", None)


def model_banner(config: AppConfig, model_name: str | None = None) -> str:
    """One line naming the active model, and saying plainly what the default is."""
    backend = config.backend
    if backend.model == DEFAULT_MODEL:
        what = "the embedded default — a small demonstration model"
        what += f" (`{model_name}`)" if model_name else " trained on synthetic data"
    else:
        what = f"`{backend.model}` (quantization: {backend.quantization}, device: {backend.device})"
    return f"Active model: {what}."


def build_studio(config: AppConfig, pipeline=None, examples: list[GalleryItem] | None = None,
                 curators: set[str] | None = None, auth_required: bool = False) -> gr.Blocks:  # fmt: skip
    """The studio's Blocks; without a pipeline only the gallery is shown (no model loaded)."""
    items = load_gallery(EXAMPLES_DIR) if examples is None else examples
    oauth = bool(os.environ.get("OAUTH_CLIENT_ID"))  # a Space with `hf_oauth: true`: sign in with Hugging Face
    handlers = StudioHandlers(pipeline, items, curators, auth_required or oauth) if pipeline is not None else None
    with gr.Blocks(title="Reason-IAD Studio") as studio:
        model_name = getattr(getattr(pipeline, "backend", None), "name", None)
        if oauth:
            gr.LoginButton()
        gr.Markdown(
            f"# Reason-IAD Studio\nKnowledge-guided latent reasoning for explainable industrial anomaly "
            f"detection · v{__version__}\n\n{model_banner(config, model_name)}",
            elem_id="header",
        )
        last_answer = gr.State("")
        with gr.Tabs():
            with gr.Tab("Inspect", id="inspect"):
                choices = _inspect_tab(config, handlers, items, last_answer)
            if handlers is not None and pipeline.store is not None:
                with gr.Tab("Knowledge", id="knowledge"):
                    _knowledge_tab(handlers, choices)
            if handlers is not None:
                from demo.comparison import CompareHandlers
                from demo.handlers import WorkbenchHandlers
                from demo.workbench import annotate_tab, compare_tab

                with gr.Tab("Annotate", id="annotate"):
                    annotate_tab(WorkbenchHandlers(handlers), guarded, last_answer)
                with gr.Tab("Compare", id="compare"):
                    compare_tab(CompareHandlers(handlers), guarded, choices)
    return studio


def _gallery_column(items: list[GalleryItem]):
    gallery = gr.Gallery(value=[(str(i.image), i.caption) for i in items], columns=6, height=260,
                         label=f"Example gallery ({len(items)} images)", allow_preview=False,
                         elem_id="example-gallery")  # fmt: skip
    ground_truth = gr.AnnotatedImage(label="Ground truth of the selected example", height=220)
    suggestions = gr.Markdown("_Pick an example to see its ground truth and suggested questions._")
    return gallery, ground_truth, suggestions


def _inspect_tab(config: AppConfig, handlers: StudioHandlers | None, items: list[GalleryItem],
                 last_answer: gr.State) -> list[str]:  # fmt: skip
    """The Inspect tab; returns the category choices it offers."""
    pairs = sorted({(i.dataset, i.category) for i in items})
    if handlers is not None and handlers.pipeline.store is not None:
        from reason_iad.knowledge.search import categories

        pairs = categories(handlers.pipeline.store)
    defaults = config.reasoning
    with gr.Row():
        with gr.Column(scale=2):
            image = gr.Image(type="filepath", label="Query image", height=300, elem_id="query-image")
            gallery, ground_truth, suggestions = _gallery_column(items)
            category = gr.Dropdown(category_choices(pairs), value=ANY_CATEGORY, label="Category")
            question = gr.Textbox(label="Question (empty: MMAD's anomaly question)", elem_id="question")
            options = gr.Textbox(label="Options, one per line (A. ..., B. ...)", lines=3, elem_id="options")
            with gr.Accordion("One-shot template", open=False):
                template = gr.Image(type="filepath", label="Normal template (optional)", height=160)
                auto_template = gr.Checkbox(True, label="Otherwise use the category's nearest normal exemplar")
            with gr.Accordion("Reasoning settings", open=False):
                mode = gr.Radio(list(MODES), value=defaults.mode, label="Mode")
                latents = gr.Slider(1, 16, value=defaults.num_latent_tokens, step=1, label="Latent tokens")
                steps = gr.Slider(1, 40, value=defaults.num_steps, step=1, label="Steps")
                patches = gr.Slider(0, 8, value=defaults.patches_per_step, step=1, label="Patches per step")
                answer_weight = gr.Slider(0, 2, value=defaults.answer_reward_weight, label="Answer-entropy weight")
                latent_weight = gr.Slider(0, 2, value=defaults.latent_reward_weight, label="Latent-entropy weight")
                readout = gr.Radio(["letter", "likelihood"], value=defaults.readout, label="Answer read-out")
                evidence = gr.Radio(["none", "highlight", "contour", "box", "text"], value=defaults.evidence,
                                    label="Show the visual memory's evidence to the model")  # fmt: skip
                prior = gr.Radio(["attention", "anomaly", "mix"], value=defaults.injection_prior,
                                 label="Patch injection prior")  # fmt: skip
            pins = gr.CheckboxGroup([], label="Knowledge to use (untick to leave out)", elem_id="knowledge-pins")
            pin_note = gr.Markdown("", elem_classes="status")
            with gr.Row():
                run = gr.Button("Inspect", variant="primary", elem_id="run")
                stop = gr.Button("Stop", elem_id="stop")
        with gr.Column(scale=3):
            plot = gr.Plot(label="Reward and entropy per step", elem_id="reasoning-plot")
            with gr.Row():
                patched = gr.Image(label="Injected patches (labelled by step)", height=300, elem_id="patches")
                anomaly = gr.Image(label="Visual memory: anomaly map", height=300, elem_id="anomaly-map")
                attention = gr.Image(label="Latent → image attention", height=300)
            anomaly_note = gr.Markdown("", elem_classes="status")
            replay = gr.Slider(0, 1, value=0, step=1, label="Replay injection (step)", interactive=True)
            bars = gr.Plot(label="Answer distribution")
            answer = gr.Markdown("", elem_id="answer")
            used = gr.Dataframe(headers=["id", "title", "score", "how"], label="Knowledge in the prompt",
                                interactive=False)  # fmt: skip
    trace = gr.State([])
    query_state = gr.State(None)

    def pick_example(event: gr.SelectData):
        item = items[event.index]
        first = next((q for q in item.questions if q.type != "Anomaly Detection"), None)
        opts = "\n".join(f"{k}. {v}" for k, v in first.options.items()) if first else ""
        choice = f"{item.dataset} / {item.category}"
        return (str(item.image), (str(item.image), mask_annotations(item)), questions_markdown(item),
                choice if choice in category_choices(pairs) else ANY_CATEGORY, first.question if first else "", opts)

    gallery.select(pick_example, outputs=[image, ground_truth, suggestions, category, question, options],
                   api_visibility="private")  # fmt: skip
    if handlers is None:
        return category_choices(pairs)

    preview = guarded(handlers.preview_knowledge)

    retrieved = gr.State([])

    def refresh_pins(img, choice):
        labels, selected, note = preview(img, choice)
        return gr.update(choices=labels, value=selected), note, labels

    for trigger in (image.change, category.change):  # images are decoded by our loader, never by Gradio (bombs)
        trigger(refresh_pins, [image, category], [pins, pin_note, retrieved], api_visibility="private",
                preprocess=False)  # fmt: skip

    @gpu
    def inspect(img, choice, question_text, options_text, tmpl, auto, mode_, latents_, steps_, patches_, aw, lw,
                readout_, evidence_, prior_, pinned, offered=None):  # fmt: skip
        settings = ReasoningSettings(mode_, latents_, steps_, patches_, aw, lw, readout_, evidence_, prior_)
        pinned = None if not pinned or set(pinned) == set(offered or []) else pinned  # untouched: retrieve afresh
        starting = "⏳ Retrieving knowledge, consulting the visual memory and running the prefix pass…"
        yield (gr.skip(),) * 5 + (starting,) + (gr.skip(),) * 5
        try:
            query = uploaded_image(img, "query image")
            stream = handlers.inspect(query, choice, question_text, options_text, settings, tmpl, auto, pinned)
            for steps_so_far, inspection, found in stream:
                memory_view = (render.anomaly_overlay(query, found) if found is not None else None,
                               render.anomaly_markdown(found))  # fmt: skip
                if not steps_so_far and inspection is None:
                    yield (gr.skip(),) * 9 + memory_view
                elif inspection is None:
                    figure, drawn, answer_plot = handlers.render_step(query, steps_so_far, int(steps_))
                    progress = f"Step {steps_so_far[-1].step} of {int(steps_)}…"
                    slider = gr.update(maximum=max(len(steps_so_far), 1))
                    yield (figure, drawn, gr.skip(), slider, answer_plot, progress, gr.skip(), steps_so_far, query,
                           *memory_view)  # fmt: skip
                else:
                    yield _final_outputs(query, steps_so_far, inspection, int(steps_)) + memory_view
        except UserError as err:
            raise gr.Error(str(err), print_exception=False) from None

    outputs = [plot, patched, attention, replay, bars, answer, used, trace, query_state, anomaly, anomaly_note]
    event = run.click(inspect, [image, category, question, options, template, auto_template, mode, latents, steps,
                                patches, answer_weight, latent_weight, readout, evidence, prior, pins, retrieved],
                      outputs,
                      api_name="inspect", concurrency_limit=1, concurrency_id="model", preprocess=False)  # fmt: skip
    event.then(lambda markdown: markdown.split("**")[1] if markdown and "**" in markdown else "", answer, last_answer,
               api_visibility="private")  # fmt: skip
    stop.click(None, cancels=[event], api_visibility="private")
    replay.change(lambda q, t, k: render.replay_frame(q, t, int(k)) if q is not None else None,
                  [query_state, trace, replay], patched, api_visibility="private")  # fmt: skip
    return category_choices(pairs)


def _final_outputs(query, steps, inspection, num_steps: int) -> tuple:
    figure = render.reasoning_figure(steps, num_steps) if steps else render.reasoning_figure([], 1)
    last_step = steps[-1].step if steps else 0
    return (figure, render.draw_patches(query, inspection.injected),
            render.attention_overlay(query, inspection.attention_map),
            gr.update(maximum=max(last_step, 1), value=last_step), render.answer_figure(inspection.option_probs),
            render.answer_markdown(inspection), render.knowledge_rows(inspection), steps, query)  # fmt: skip


def _knowledge_tab(handlers: StudioHandlers, choices: list[str]) -> None:
    from reason_iad.knowledge.search import categories

    pairs = categories(handlers.pipeline.store)
    with gr.Row():
        dataset = gr.Dropdown([""] + sorted({d for d, _ in pairs}), value="", label="Dataset")
        category = gr.Dropdown([""] + sorted({c for _, c in pairs}), value="", label="Category")
        refresh = gr.Button("Show")
    entries = gr.Dataframe(headers=["id", "dataset", "category", "defect", "title", "updated"], interactive=False,
                           label="Entries (click a row to edit)", max_height=320, elem_id="entries")  # fmt: skip
    with gr.Row():
        query = gr.Textbox(label="Search titles and texts", scale=3, elem_id="kb-query")
        search_mode = gr.Radio(["hybrid", "semantic", "fts"], value="hybrid", label="Search", scale=2)
        search_button = gr.Button("Search", scale=1, elem_id="kb-search")
    results = gr.Dataframe(headers=["score", "id", "title"], interactive=False, label="Search results (click to edit)",
                           elem_id="search-results")  # fmt: skip
    with gr.Row():
        with gr.Column():
            gr.Markdown("#### Edit")
            entry_id = gr.Textbox(label="Entry id", interactive=False, elem_id="edit-id")
            title = gr.Textbox(label="Title", elem_id="edit-title")
            text = gr.Textbox(label="Text", lines=8, elem_id="edit-text")
            with gr.Row():
                save = gr.Button("Save", variant="primary", elem_id="save-entry")
                confirm = gr.Checkbox(label="confirm delete")
                delete = gr.Button("Delete", variant="stop")
        with gr.Column():
            gr.Markdown("#### Add")
            new_dataset, new_category = gr.Textbox(label="Dataset"), gr.Textbox(label="Category")
            new_defect = gr.Textbox(label="Defect type (or 'good' for the normal appearance)")
            new_title, new_text = gr.Textbox(label="Title"), gr.Textbox(label="Text", lines=5)
            add = gr.Button("Add entry")
    status = gr.Markdown("", elem_id="kb-status", elem_classes="status")
    with gr.Accordion("Versions", open=False):
        history = gr.Dataframe(headers=["version", "time", "author", "action", "summary"], interactive=False)
        with gr.Row():
            version_a, version_b = gr.Number(label="Version (restore / diff from)"), gr.Number(label="Diff to")
            restore, diff = gr.Button("Restore"), gr.Button("Diff")
        diff_view = gr.Code(label="Diff", language=None)
        view = gr.Button("View version (the 'from' number)")
        snapshot = gr.Dataframe(headers=["id", "title", "text", "updated"], interactive=False, label="That version")
    with gr.Accordion("Normal exemplars and the visual memory", open=False):
        with gr.Row():
            exemplar_category = gr.Dropdown(choices[1:], label="Category")
            show_exemplars = gr.Button("Show")
        exemplar_gallery = gr.Gallery(label="Exemplars (caption: id)", columns=8, height=200, allow_preview=False)
        bank = gr.Markdown("")
        with gr.Row():
            new_exemplar = gr.Image(type="filepath", label="Add a normal image", height=160)
            add_exemplar = gr.Button("Add exemplar")
            exemplar_id = gr.Textbox(label="Exemplar id to remove")
            remove_exemplar = gr.Button("Remove exemplar", variant="stop")
    with gr.Accordion("Import / export", open=False):
        with gr.Row():
            upload = gr.File(label="MMAD domain_knowledge.json or JSONL", file_types=[".json", ".jsonl"])
            partial = gr.Checkbox(label="write the valid entries even if some are refused")
            import_button = gr.Button("Import")
        with gr.Row():
            kind = gr.Radio(["mmad", "jsonl"], value="mmad", label="Export format")
            export_button = gr.Button("Export (latest, or the 'from' version)")
            exported = gr.File(label="Download")

    def load_row(table, event: gr.SelectData):
        stored = handlers.pipeline.store.get(str(table.iloc[event.index[0]]["id"])).entry
        return stored.id, stored.title, stored.text

    def save_entry(entry, title_, text_, request: gr.Request, profile: gr.OAuthProfile | None):
        return handlers.save_entry(entry, title_, text_, author_of(request, profile))

    def add_entry(dataset_, category_, defect, title_, text_, request: gr.Request, profile: gr.OAuthProfile | None):
        return handlers.add_entry(dataset_, category_, defect, title_, text_, author_of(request, profile))

    def delete_entry(entry, confirmed, request: gr.Request, profile: gr.OAuthProfile | None):
        return handlers.delete_entry(entry, confirmed, author_of(request, profile))

    def restore_version(version, request: gr.Request, profile: gr.OAuthProfile | None):
        return handlers.restore(version, author_of(request, profile))

    writes = {"concurrency_id": "kb-write", "concurrency_limit": 1}
    refresh.click(guarded(handlers.list_entries), [dataset, category], entries, api_visibility="private")
    entries.select(guarded(load_row), entries, [entry_id, title, text], api_visibility="private")
    results.select(guarded(load_row), results, [entry_id, title, text], api_visibility="private")
    search_button.click(guarded(handlers.search), [query, search_mode, category], results,
                        api_name="search_knowledge")  # fmt: skip
    show_history = {"fn": guarded(handlers.history), "outputs": history, "api_visibility": "private"}
    save.click(guarded(save_entry), [entry_id, title, text], status, api_visibility="private", **writes).then(
        **show_history)
    add.click(guarded(add_entry), [new_dataset, new_category, new_defect, new_title, new_text], status,
              api_name="add_knowledge", **writes).then(**show_history)  # fmt: skip
    delete.click(guarded(delete_entry), [entry_id, confirm], status, api_visibility="private", **writes).then(
        **show_history)
    restore.click(guarded(restore_version), version_a, status, api_visibility="private", **writes).then(
        **show_history)
    diff.click(guarded(handlers.diff), [version_a, version_b], diff_view, api_visibility="private")
    from demo.knowledge_panels import TransferHandlers

    transfer = TransferHandlers(handlers)

    def import_file(path, partial_, request: gr.Request, profile: gr.OAuthProfile | None):
        return transfer.import_file(path, partial_, author_of(request, profile))

    def export_file(kind_, version, request: gr.Request, profile: gr.OAuthProfile | None):
        return transfer.export_file(kind_, version, author_of(request, profile))

    view.click(guarded(transfer.version_rows), version_a, snapshot, api_visibility="private")
    from demo.knowledge_panels import ExemplarHandlers

    exemplars = ExemplarHandlers(handlers)

    def add_exemplar_fn(image_, choice, request: gr.Request, profile: gr.OAuthProfile | None,
                        progress=gr.Progress()):  # noqa: B008 - Gradio's API
        return exemplars.add(image_, choice, author_of(request, profile), progress)

    def remove_exemplar_fn(exemplar, choice, request: gr.Request, profile: gr.OAuthProfile | None):
        return exemplars.remove(exemplar, choice, author_of(request, profile))

    show_exemplars.click(guarded(exemplars.show), exemplar_category, [exemplar_gallery, bank],
                         api_visibility="private")  # fmt: skip
    add_exemplar.click(guarded(add_exemplar_fn), [new_exemplar, exemplar_category], bank, api_visibility="private",
                       preprocess=False, **writes).then(guarded(exemplars.show), exemplar_category,
                                                        [exemplar_gallery, bank], api_visibility="private")  # fmt: skip
    remove_exemplar.click(guarded(remove_exemplar_fn), [exemplar_id, exemplar_category], bank,
                          api_visibility="private", **writes).then(
        guarded(exemplars.show), exemplar_category, [exemplar_gallery, bank], api_visibility="private")
    import_button.click(guarded(import_file), [upload, partial], status, api_visibility="private", **writes).then(
        **show_history)
    export_button.click(guarded(export_file), [kind, version_a], exported, api_visibility="private")


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
