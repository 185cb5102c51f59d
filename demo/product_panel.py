"""Bring your own product, in the Inspect tab: a new category from 5-100 uploaded normal images, ready to inspect.

The panel takes image files or zip archives at once, builds the category's one-shot templates, memory bank and
calibration with a progress bar (`reason_iad.categories.create_category`), optionally adds a knowledge entry for
its normal look, and selects the new category in the Inspect tab. Only curators may create categories.
"""

from __future__ import annotations

import gradio as gr

from demo.common import KNOWLEDGE_WRITE, author_of, guarded
from demo.handlers import StudioHandlers
from reason_iad.categories import MAX_IMAGES, MIN_IMAGES, create_category
from reason_iad.errors import UserError


def created_status(new) -> str:
    """What a created category holds, in one short markdown paragraph."""
    bank = new.bank
    memory = (
        f" · memory bank: {bank.num_patches} patches from {len(bank.exemplar_ids)} exemplars"
        if bank is not None
        else ""
    )
    knowledge = f" · knowledge entry `{new.knowledge_id}`" if new.knowledge_id else ""
    skipped = f" · skipped {len(new.skipped)}: {'; '.join(new.skipped[:3])}" if new.skipped else ""
    return (
        f"**Created {new.dataset} / {new.category}** from {len(new.exemplar_ids)} normal images{memory}"
        f"{knowledge}{skipped}. It is selected above: upload a part to inspect."
    )


def product_panel(handlers: StudioHandlers, category: gr.Dropdown, choices: list[str]) -> None:
    """Build and wire the panel; on success `category` (offering `choices`) gains the new choice, selected."""
    with gr.Accordion("Bring your own product (new category from normal images)", open=False):
        files = gr.File(
            file_count="multiple",
            file_types=["image", ".zip"],
            type="filepath",
            label=f"{MIN_IMAGES}-{MAX_IMAGES} normal images (files or a zip)",
            elem_id="byop-files",
        )
        with gr.Row():
            dataset = gr.Textbox("Mine", label="Dataset", elem_id="byop-dataset")
            name = gr.Textbox(label="Category name", placeholder="e.g. gear", elem_id="byop-category")
        description = gr.Textbox(label="What a normal part looks like (optional: becomes its knowledge entry)", lines=2)
        create = gr.Button("Create category", elem_id="byop-create")
        status = gr.Markdown("", elem_classes="status", elem_id="byop-status")

    def create_product(
        paths,
        dataset_name,
        category_name,
        text,
        offered,
        request: gr.Request,
        profile: gr.OAuthProfile | None,
        progress=gr.Progress(),  # noqa: B008 - Gradio injects progress through this default
    ):
        author = handlers.curator(author_of(request, profile), "create a category")
        if not paths:
            raise UserError(f"upload {MIN_IMAGES}-{MAX_IMAGES} normal images (or a zip of them) first")
        sources = [p if isinstance(p, str) else getattr(p, "name", str(p)) for p in paths]
        new = create_category(
            handlers.pipeline,
            dataset_name or "",
            category_name or "",
            sources,
            author,
            text or "",
            progress=lambda fraction, what: progress(fraction, desc=what),
        )
        label = f"{new.dataset} / {new.category}"
        offered = [*offered, label] if label not in offered else list(offered)
        return created_status(new), gr.update(choices=offered, value=label), offered

    offered = gr.State(list(choices))  # the category dropdown's choices, as this session has extended them
    create.click(
        guarded(create_product),
        [files, dataset, name, description, offered],
        [status, category, offered],
        api_visibility="private",
        **KNOWLEDGE_WRITE,
    )
