"""The Knowledge tab: browse, search, edit, add, delete, restore and diff the versioned category knowledge.

It opens listing the first category's entries. Its lower panels check what an edit changes (the category's
questions answered under two versions: accuracy per subtask and the flipped answers), manage the normal exemplars
(and the visual memory's banks), move a category's anomaly threshold (histogram, versioned history) and import /
export. Every write checks the curator server-side
(`StudioHandlers.curator`) and runs on the `kb-write` queue, one at a time.
Public endpoints: `/search_knowledge` (query, mode, category) and `/add_knowledge`.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from gradio.context import get_blocks_context

from demo.common import KNOWLEDGE_WRITE, MODEL_RUN, author_of, guarded
from demo.handlers import StudioHandlers
from demo.knowledge_panels import ExemplarHandlers, ImpactHandlers, TransferHandlers
from demo.threshold_panel import HISTORY_HEADERS, ThresholdHandlers
from reason_iad.knowledge.transfer import KNOWLEDGE_FORMATS


@dataclass(frozen=True)
class EntryEditor:
    """The edit and add forms and the tab's status line."""

    entry_id: gr.Textbox
    title: gr.Textbox
    text: gr.Textbox
    save: gr.Button
    confirm: gr.Checkbox
    delete: gr.Button
    new_fields: tuple[gr.Textbox, ...]  # dataset, category, defect, title, text
    add: gr.Button
    status: gr.Markdown


@dataclass(frozen=True)
class VersionPanel:
    """The version history, restore, diff and whole-version view."""

    history: gr.Dataframe
    version_a: gr.Number
    restore: gr.Button

    def show_history(self, handlers: StudioHandlers) -> dict:
        """Keyword arguments of a `.then(...)` refreshing the history after a write."""
        return {"fn": guarded(handlers.history), "outputs": self.history, "api_visibility": "private"}


def knowledge_tab(handlers: StudioHandlers, choices: list[str]) -> None:
    """Build and wire the Knowledge tab over the pipeline's knowledge store."""
    from reason_iad.knowledge.search import categories

    pairs = categories(handlers.pipeline.store)
    tables = _browse(handlers, pairs)
    editor = _editor_layout()
    versions = _versions(handlers)
    _wire_editor(editor, tables, handlers, versions)
    _impact(ImpactHandlers(handlers), pairs)
    _exemplars(ExemplarHandlers(handlers), choices)
    _thresholds(ThresholdHandlers(handlers), choices)
    _transfer(TransferHandlers(handlers), versions, editor.status, handlers)


def _browse(handlers: StudioHandlers, pairs: list[tuple[str, str]]) -> tuple[gr.Dataframe, gr.Dataframe]:
    """The entry list and the search; returns (entries table, search results table)."""
    with gr.Row():
        dataset = gr.Dropdown([""] + sorted({d for d, _ in pairs}), value="", label="Dataset")
        category = gr.Dropdown([""] + sorted({c for _, c in pairs}), value="", label="Category")
        refresh = gr.Button("Show")
    first = [gr.State(value) for value in (pairs[0] if pairs else ("", ""))]  # listed when the page opens
    entries = gr.Dataframe(
        headers=["id", "dataset", "category", "defect", "title", "updated"],
        interactive=False,
        label="Entries (the first category when the page opens; click a row to edit)",
        max_height=320,
        elem_id="entries",
    )
    with gr.Row():
        query = gr.Textbox(label="Search titles and texts", scale=3, elem_id="kb-query")
        search_mode = gr.Radio(["hybrid", "semantic", "fts"], value="hybrid", label="Search", scale=2)
        search_button = gr.Button("Search", scale=1, elem_id="kb-search")
    results = gr.Dataframe(
        headers=["score", "id", "title"],
        interactive=False,
        label="Search results (click to edit)",
        elem_id="search-results",
    )
    refresh.click(guarded(handlers.list_entries), [dataset, category], entries, api_visibility="private")
    page = get_blocks_context().root_block  # every page load lists `first` (the dropdowns keep searches global)
    page.load(guarded(handlers.list_entries), first, entries, api_visibility="private")
    search_button.click(guarded(handlers.search), [query, search_mode, category], results, api_name="search_knowledge")
    return entries, results


def _editor_layout() -> EntryEditor:
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
            new_fields = (
                gr.Textbox(label="Dataset"),
                gr.Textbox(label="Category"),
                gr.Textbox(label="Defect type (or 'good' for the normal appearance)"),
                gr.Textbox(label="Title"),
                gr.Textbox(label="Text", lines=5),
            )
            add = gr.Button("Add entry")
    status = gr.Markdown("", elem_id="kb-status", elem_classes="status")
    return EntryEditor(entry_id, title, text, save, confirm, delete, new_fields, add, status)


def _versions(handlers: StudioHandlers) -> VersionPanel:
    with gr.Accordion("Versions", open=False):
        history = gr.Dataframe(headers=["version", "time", "author", "action", "summary"], interactive=False)
        with gr.Row():
            version_a, version_b = gr.Number(label="Version (restore / diff from)"), gr.Number(label="Diff to")
            restore, diff = gr.Button("Restore"), gr.Button("Diff")
        diff_view = gr.Code(label="Diff", language=None)
        view = gr.Button("View version (the 'from' number)")
        snapshot = gr.Dataframe(headers=["id", "title", "text", "updated"], interactive=False, label="That version")
    diff.click(guarded(handlers.diff), [version_a, version_b], diff_view, api_visibility="private")
    view.click(guarded(TransferHandlers(handlers).version_rows), version_a, snapshot, api_visibility="private")
    return VersionPanel(history, version_a, restore)


def _wire_editor(editor: EntryEditor, tables, handlers: StudioHandlers, versions: VersionPanel) -> None:
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

    for table in tables:
        table.select(guarded(load_row), table, [editor.entry_id, editor.title, editor.text], api_visibility="private")
    show_history = versions.show_history(handlers)
    private = {"api_visibility": "private", **KNOWLEDGE_WRITE}
    edit = [editor.entry_id, editor.title, editor.text]
    editor.save.click(guarded(save_entry), edit, editor.status, **private).then(**show_history)
    editor.add.click(
        guarded(add_entry), list(editor.new_fields), editor.status, api_name="add_knowledge", **KNOWLEDGE_WRITE
    ).then(**show_history)
    editor.delete.click(guarded(delete_entry), [editor.entry_id, editor.confirm], editor.status, **private).then(
        **show_history
    )
    versions.restore.click(guarded(restore_version), versions.version_a, editor.status, **private).then(**show_history)


def _impact(impact: ImpactHandlers, pairs: list[tuple[str, str]]) -> None:
    """Check impact: a category's questions answered under two versions, accuracy per subtask, flipped answers."""
    from reason_iad.synth import DATASET

    labels = [f"{d} / {c}" for d, c in pairs]
    synthetic = [label for label, (d, _) in zip(labels, pairs, strict=True) if d == DATASET]
    with gr.Accordion("What does this edit change? (impact check)", open=False):
        gr.Markdown(
            "Answers the category's questions under two knowledge versions and shows accuracy per subtask and "
            "every answer that flipped. Answers are cached: after a small edit only the questions whose retrieved "
            "knowledge changed run again. The knowledge base itself is never changed."
        )
        with gr.Row():
            from_version = gr.Number(label="From version (0: before the last edit)", precision=0)
            to_version = gr.Number(label="To version (0: the latest)", precision=0)
            category = gr.Dropdown(
                labels, value=(synthetic or labels or [None])[0], label="Category", elem_id="impact-category"
            )
            mode = gr.Radio(["knowledge", "full"], value="knowledge", label="Mode (full adds latent steps)")
        data = gr.Textbox(
            label="Evaluation set",
            elem_id="impact-data",
            placeholder="an MMAD-format folder (with mmad.json); empty: a held-out synthetic set (SynthIAD only)",
        )
        check = gr.Button("Check impact", variant="primary", elem_id="check-impact")
        summary = gr.Markdown("", elem_id="impact-summary")
        plot = gr.Plot(label="Accuracy per subtask", elem_id="impact-plot")
        subtasks = gr.Dataframe(
            headers=["subtask", "questions", "before %", "after %", "change (points)"], interactive=False
        )
        flipped = gr.Gallery(
            label="Flipped answers (caption: subtask, before → after, kind, question)",
            columns=6,
            fit_columns=False,  # one flip stays a thumbnail
            height="auto",
            preview=False,
            object_fit="contain",
            elem_id="impact-flips",
        )
        flips = gr.Dataframe(
            headers=["image", "subtask", "question", "before", "after", "correct", "kind"],
            interactive=False,
            label="Flipped answers",
        )

    def check_impact(
        from_,
        to_,
        choice,
        data_,
        mode_,
        request: gr.Request,
        profile: gr.OAuthProfile | None,
        progress=gr.Progress(),  # noqa: B008
    ):
        return impact.check(from_, to_, choice, data_, mode_, author_of(request, profile), progress)

    check.click(
        guarded(check_impact),
        [from_version, to_version, category, data, mode],
        [summary, plot, subtasks, flipped, flips],
        api_visibility="private",
        **MODEL_RUN,
    )


def _exemplars(exemplars: ExemplarHandlers, choices: list[str]) -> None:
    """Normal exemplars per category: the one-shot templates and the visual memory's banks."""
    with gr.Accordion("Normal exemplars and the visual memory", open=False):
        with gr.Row():
            category = gr.Dropdown(choices[1:], label="Category")
            show = gr.Button("Show")
        gallery = gr.Gallery(label="Exemplars (caption: id)", columns=8, height=200, allow_preview=False)
        bank = gr.Markdown("")
        with gr.Row():
            new_exemplar = gr.Image(type="filepath", label="Add a normal image", height=160)
            add = gr.Button("Add exemplar")
            exemplar_id = gr.Textbox(label="Exemplar id to remove")
            remove = gr.Button("Remove exemplar", variant="stop")

    def add_exemplar_fn(
        image_,
        choice,
        request: gr.Request,
        profile: gr.OAuthProfile | None,
        progress=gr.Progress(),  # noqa: B008
    ):
        return exemplars.add(image_, choice, author_of(request, profile), progress)

    def remove_exemplar_fn(exemplar, choice, request: gr.Request, profile: gr.OAuthProfile | None):
        return exemplars.remove(exemplar, choice, author_of(request, profile))

    shown = {"fn": guarded(exemplars.show), "inputs": category, "outputs": [gallery, bank], "api_visibility": "private"}
    private = {"api_visibility": "private", **KNOWLEDGE_WRITE}
    show.click(**shown)
    add.click(guarded(add_exemplar_fn), [new_exemplar, category], bank, preprocess=False, **private).then(**shown)
    remove.click(guarded(remove_exemplar_fn), [exemplar_id, category], bank, **private).then(**shown)


def _thresholds(thresholds: ThresholdHandlers, choices: list[str]) -> None:
    """A category's anomaly threshold: histogram, a movable "suspicious" line, its versioned history."""
    with gr.Accordion("Anomaly threshold (visual memory)", open=False):
        with gr.Row():
            category = gr.Dropdown(choices[1:], label="Category", elem_id="threshold-category")
            proposed = gr.Slider(
                0.05,
                0.95,
                value=0.5,
                step=0.01,
                label="Suspicious from (fitted scale; 0.5 = fitted)",
                elem_id="threshold-slider",
            )
        plot = gr.Plot(label="Exemplar and recent scores", elem_id="threshold-plot")
        summary = gr.Markdown("", elem_id="threshold-summary")
        with gr.Row():
            note = gr.Textbox(label="Why (recorded with the change)", scale=3, elem_id="threshold-note")
            save = gr.Button("Save threshold", variant="primary", elem_id="threshold-save")
            reset = gr.Button("Back to fitted")
        history = gr.Dataframe(
            headers=HISTORY_HEADERS, label="Threshold history", interactive=False, elem_id="threshold-history"
        )
        with gr.Row():
            number = gr.Number(label="Change to restore", precision=0)
            restore = gr.Button("Restore change")

    def save_fn(choice, value, why, request: gr.Request, profile: gr.OAuthProfile | None):
        return thresholds.save(choice, value, why, author_of(request, profile))

    def reset_fn(choice, request: gr.Request, profile: gr.OAuthProfile | None):
        return thresholds.reset(choice, author_of(request, profile))

    def restore_fn(choice, change, request: gr.Request, profile: gr.OAuthProfile | None):
        return thresholds.restore(choice, change, author_of(request, profile))

    viewed = {"fn": guarded(thresholds.view), "inputs": [category, proposed], "api_visibility": "private"}
    viewed["outputs"] = [plot, summary, history]
    category.change(**viewed)
    proposed.change(**viewed, trigger_mode="always_last")
    private = {"api_visibility": "private", **KNOWLEDGE_WRITE}
    save.click(guarded(save_fn), [category, proposed, note], summary, **private).then(**viewed)
    reset.click(guarded(reset_fn), [category], summary, **private).then(**viewed)
    restore.click(guarded(restore_fn), [category, number], summary, **private).then(**viewed)


def _transfer(transfer: TransferHandlers, versions: VersionPanel, status: gr.Markdown, handlers) -> None:
    """Import an MMAD `domain_knowledge.json` or JSONL file; export the latest or a past version."""
    with gr.Accordion("Import / export", open=False):
        with gr.Row():
            upload = gr.File(
                label=" or ".join(f.label for f in KNOWLEDGE_FORMATS.values()),
                file_types=[f.suffix for f in KNOWLEDGE_FORMATS.values()],
            )
            partial = gr.Checkbox(label="write the valid entries even if some are refused")
            import_button = gr.Button("Import")
        with gr.Row():
            kind = gr.Radio(
                [(f.label, f.name) for f in KNOWLEDGE_FORMATS.values()], value="mmad", label="Export format"
            )
            export_button = gr.Button("Export (latest, or the 'from' version)")
            exported = gr.File(label="Download")

    def import_file(path, partial_, request: gr.Request, profile: gr.OAuthProfile | None):
        return transfer.import_file(path, partial_, author_of(request, profile))

    def export_file(kind_, version, request: gr.Request, profile: gr.OAuthProfile | None):
        return transfer.export_file(kind_, version, author_of(request, profile))

    import_button.click(
        guarded(import_file), [upload, partial], status, api_visibility="private", **KNOWLEDGE_WRITE
    ).then(**versions.show_history(handlers))
    export_button.click(guarded(export_file), [kind, versions.version_a], exported, api_visibility="private")
