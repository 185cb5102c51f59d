"""Handlers of the Knowledge tab's lower panels: import/export, whole-version views, normal exemplars."""

from __future__ import annotations

from demo.handlers import StudioHandlers, split_category, uploaded_image
from reason_iad.errors import UserError


class TransferHandlers:
    """Knowledge import/export and whole-version views (the Knowledge tab's lower panels)."""

    def __init__(self, studio: StudioHandlers) -> None:
        self.studio = studio

    def import_file(self, path: str | None, partial: bool, username: str | None) -> str:
        """Import an uploaded MMAD `domain_knowledge.json` or JSONL file; returns the summary."""
        from reason_iad.knowledge.transfer import import_entries, read_import_file

        author = self.studio.curator(username)
        if not path:
            raise UserError("upload a knowledge file first (MMAD domain_knowledge.json or JSONL)")
        entries, refused = read_import_file(path, author)
        summary = import_entries(self.studio._store(), entries, refused, author, partial)
        return summary.describe().replace("\n", "  \n")

    def export_file(self, kind: str, version: float | None, username: str | None = None) -> str:
        """Export the knowledge (optionally at a version) to a temporary file (curators only); returns its path."""
        self.studio.curator(username, "export the knowledge base")
        import tempfile
        from pathlib import Path

        from reason_iad.knowledge.transfer import KNOWLEDGE_FORMATS, export_knowledge

        if kind not in KNOWLEDGE_FORMATS:
            raise UserError(f"export format must be one of {', '.join(KNOWLEDGE_FORMATS)}")
        folder = Path(tempfile.mkdtemp(prefix="reason-iad-knowledge-"))
        path = folder / KNOWLEDGE_FORMATS[kind].filename
        export_knowledge(self.studio._store(), path, kind, int(version) if version else None)
        return str(path)

    def version_rows(self, version: float | None) -> list[list]:
        """Every entry as it was at a version."""
        if not version:
            raise UserError("choose a version to view")
        return [
            [s.entry.id, s.entry.title, s.entry.text[:200], s.updated_at[:19]]
            for s in self.studio._store().list(version=int(version))
        ]


class ExemplarHandlers:
    """Normal exemplars per category: templates for one-shot and the visual memory's bank."""

    def __init__(self, studio: StudioHandlers) -> None:
        self.studio = studio
        self.pipeline = studio.pipeline

    def show(self, choice: str | None) -> tuple[list, str]:
        """(gallery of (image, id), bank description) for a `dataset / category` choice."""
        dataset, category = split_category(choice)
        if not category or self.pipeline.exemplars is None:
            raise UserError("choose a category")
        gallery = [(e.image, e.id) for e in self.pipeline.exemplars.list(category, dataset)]
        return gallery, self.bank_text(dataset, category)

    def bank_text(self, dataset: str, category: str) -> str:
        """The memory bank's size and calibrated threshold, or why there is none."""
        memory = self.pipeline.memory
        if memory is None:
            return "_The visual memory is off for this model._"
        info = memory.bank_info(dataset, category)
        if not info.version:
            return f"_No memory bank for {dataset} / {category} yet (built on the first inspection or exemplar)._"
        threshold = f", suspicious from raw score {info.calibration.threshold:.3f}" if info.calibration else ""
        return (
            f"**Memory bank:** {len(info.exemplar_ids)} exemplars, {info.num_patches} patches "
            f"(from {info.source_patches}), version {info.version}{threshold}"
        )

    def add(self, image, choice: str | None, username: str | None, progress=None) -> str:
        """Add a normal exemplar (the one-shot templates and the memory bank); returns a status line."""
        author = self.studio.curator(username)
        dataset, category = split_category(choice)
        if image is None or not category:
            raise UserError("choose a category and upload a normal image")
        image = uploaded_image(image, "exemplar")
        if self.pipeline.memory is not None and progress is not None:
            progress(0.2, desc=f"rebuilding the memory bank of {category}")
        [exemplar] = self.pipeline.add_exemplars([image], dataset, category, author, "added in the studio").ids
        return f"Added exemplar {exemplar}. " + self.bank_text(dataset, category)

    def remove(self, exemplar_id: str, choice: str | None, username: str | None) -> str:
        """Remove an exemplar (its bank is rebuilt without it); returns a status line."""
        self.studio.curator(username)
        dataset, category = split_category(choice)
        if not exemplar_id or not category:
            raise UserError("choose a category and give the exemplar id (shown under its image)")
        self.pipeline.remove_exemplar(exemplar_id, dataset, category)
        return f"Removed exemplar {exemplar_id}. " + self.bank_text(dataset, category)


class ImpactHandlers:
    """The impact check (what does this edit change?): a category's questions under two knowledge versions.

    The work is `reason_iad.eval.impact.check_impact` over the studio's own pipeline (its knowledge base, visual
    memory and model); these handlers only resolve the inputs and shape the outputs.
    """

    THUMBNAIL = 160

    def __init__(self, studio: StudioHandlers, sets_folder=None) -> None:
        self.studio = studio
        self.sets_folder = sets_folder  # where held-out synthetic sets are built (None: the user data dir)

    def versions(self, from_version: float | None, to_version: float | None) -> tuple[int, int]:
        """The versions asked for; empty or 0 (versions start at 1): the version before the last edit / the latest."""
        from reason_iad.eval.impact import default_versions, resolve_version

        store = self.studio._store()
        before, latest = default_versions(store)
        return tuple(resolve_version(store, int(v)) for v in (from_version or before, to_version or latest))

    def check(self, from_version, to_version, choice, data, mode, username, progress=None) -> tuple:
        """(summary markdown, plotly figure, subtask rows, flipped-answer gallery, flipped-answer rows)."""
        from reason_iad.eval.impact import check_impact, held_out_set, read_impact_set
        from reason_iad.eval.impact_report import impact_figure, impact_markdown

        self.studio.curator(username, "run an impact check")  # it runs the model at length and writes its cache
        dataset, category = split_category(choice)
        if not category:
            raise UserError("choose a category")
        versions = self.versions(from_version, to_version)
        report_progress = (lambda phase, done, total: progress((done, total), desc=phase)) if progress else None
        root = (data or "").strip() or held_out_set(dataset, category, self.sets_folder, report_progress)
        eval_set = read_impact_set(root, f"{dataset}/{category}" if dataset else category)
        report = check_impact(self.studio.pipeline, eval_set, *versions, mode or "knowledge", report_progress)
        subtasks = [
            [
                s.subtask,
                s.questions,
                round(100 * s.before_accuracy, 1),
                round(100 * s.after_accuracy, 1),
                round(s.change, 1),
            ]
            for s in report.subtasks
        ]
        flips = [
            [q.image, q.subtask, q.question, q.before or "-", q.after or "-", q.correct, q.kind] for q in report.flips
        ]
        return impact_markdown(report), impact_figure(report), subtasks, self.thumbnails(report), flips

    def thumbnails(self, report) -> list[tuple]:
        """(thumbnail, caption) per flipped answer: `subtask: B → A (fixed)`."""
        from reason_iad.images import load_image

        shown = []
        for q in report.flips:
            image = load_image(q.image_path, q.image).copy()
            image.thumbnail((self.THUMBNAIL, self.THUMBNAIL))
            shown.append((image, f"{q.subtask}: {q.before or '-'} → {q.after or '-'} ({q.kind}) · {q.question}"))
        return shown
