"""Event handlers of the studio: validate input, call the library facade (`Pipeline`), return plain values.

Handlers raise `UserError` for bad input; `studio.py` turns that into a Gradio error message (never a
traceback). Write actions check the curator server-side when authentication is configured.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from demo.gallery import GalleryItem
from demo.ground_truth import GroundTruth, GroundTruthIndex
from reason_iad.config import DEFAULT_REWARD_WEIGHTS, MODES, ReasoningConfig
from reason_iad.errors import UserError
from reason_iad.images import load_image
from reason_iad.reasoning.prompt import Question
from reason_iad.types import InspectionEvent

ANY_CATEGORY = "auto-detect"


WEIGHT_SUFFIX = "_reward_weight"


def weight_control(reward: str) -> str:
    """The control (and `/inspect` parameter) name of a reward's weight: `answer` -> `answer_reward_weight`."""
    return reward + WEIGHT_SUFFIX


@dataclass(frozen=True)
class ReasoningSettings:
    """The studio's reasoning controls: a few `ReasoningConfig` fields and one weight per reward (`REWARDS`)."""

    mode: str = "full"
    num_latent_tokens: int = 4
    num_steps: int = 15
    patches_per_step: int = 2
    readout: str = "letter"
    evidence: str = "none"
    injection_prior: str = "attention"
    reward_weights: dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_REWARD_WEIGHTS))

    @classmethod
    def from_config(cls, config: ReasoningConfig) -> ReasoningSettings:
        """The controls as a loaded configuration sets them."""
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})

    @classmethod
    def from_controls(cls, values: dict) -> ReasoningSettings:
        """From control values keyed as `controls()` keys them (each reward's weight as `<reward>_reward_weight`)."""
        plain = {k: v for k, v in values.items() if not k.endswith(WEIGHT_SUFFIX)}
        weights = {k.removesuffix(WEIGHT_SUFFIX): v for k, v in values.items() if k.endswith(WEIGHT_SUFFIX)}
        unknown = sorted(set(plain) - ({f.name for f in dataclasses.fields(cls)} - {"reward_weights"}))
        if unknown:
            raise UserError(f"unknown settings {unknown}")
        return cls(**plain, reward_weights=weights or dict(DEFAULT_REWARD_WEIGHTS))

    def controls(self) -> dict[str, object]:
        """The settings flat, keyed by control name (the inverse of `from_controls`)."""
        plain = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "reward_weights"}
        return plain | {weight_control(name): weight for name, weight in self.reward_weights.items()}

    def to_config(self, base: ReasoningConfig) -> ReasoningConfig:
        """These settings over the app's defaults (validated by `ReasoningConfig`)."""
        if self.mode not in MODES:
            raise UserError(f"mode must be one of {MODES}")
        integers = ("num_latent_tokens", "num_steps", "patches_per_step")  # sliders send floats
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values |= {k: int(values[k]) for k in integers}
        values["reward_weights"] = {k: float(v) for k, v in self.reward_weights.items()}
        return dataclasses.replace(base, **values)


PRESET_FIELDS: tuple[str, ...] = ("num_steps", "num_latent_tokens", "patches_per_step")
PRESETS: dict[str, dict[str, int]] = {
    "fast": {"num_steps": 4, "num_latent_tokens": 2, "patches_per_step": 2},  # a quick look (seconds on a CPU)
    "deep": {"num_steps": 15, "num_latent_tokens": 4, "patches_per_step": 2},  # the paper's T = 15
}


def preset_of(settings: ReasoningSettings) -> str:
    """The preset the settings match, or "custom"."""
    values = {name: int(getattr(settings, name)) for name in PRESET_FIELDS}
    return next((name for name, preset in PRESETS.items() if preset == values), "custom")


def parse_question(text: str, options_text: str) -> Question:
    """A question typed in the studio: options one per line (`A. text`, or just the text), via `Question.parse`."""
    return Question.parse(text, (options_text or "").splitlines())


def uploaded_image(value, name: str = "image") -> Image.Image | None:
    """Decode an image input with the project's safe loader (size checked before decoding), or None.

    Image events run with `preprocess=False`, so Gradio never decodes an upload itself (a decompression bomb or a
    corrupt file would leave a traceback in the server log): `value` is Gradio's file payload, a path or an image.
    """
    if value is None:
        return None
    if isinstance(value, dict):  # named after the user's file, not the server's cache path
        if not value.get("path") or not Path(value["path"]).is_file():
            raise UserError(f"the {name} upload carries no file; upload it again")
        label = f"{name} {value.get('orig_name') or Path(value['path']).name!r}"
        return load_image(Path(value["path"]).read_bytes(), label)
    return load_image(value, name)


def category_choices(pairs: Sequence[tuple[str, str]]) -> list[str]:
    """Dropdown labels `dataset / category`, with auto-detection first."""
    return [ANY_CATEGORY] + [f"{d} / {c}" for d, c in pairs]


def split_category(choice: str | None) -> tuple[str | None, str | None]:
    """(dataset, category) from a dropdown label; (None, None) for auto-detect."""
    if not choice or choice == ANY_CATEGORY:
        return None, None
    dataset, _, category = choice.partition(" / ")
    return dataset.strip(), category.strip()


class StudioHandlers:
    """The studio's actions over one loaded `Pipeline`."""

    def __init__(
        self, pipeline, gallery: list[GalleryItem], curators: set[str] | None = None, auth_required: bool = False
    ) -> None:
        self.pipeline, self.gallery = pipeline, gallery
        self.truth = GroundTruthIndex(gallery)
        self.curators = curators or set()
        self.auth_required = auth_required or bool(self.curators)

    # ------------------------------------------------------------------ access
    def curator(self, username: str | None, action: str = "change the knowledge base") -> str:
        """The author of a write: the logged-in curator when auth is configured (checked here, server-side)."""
        if not self.auth_required:
            return (username or os.environ.get("REASON_IAD_AUTHOR") or "studio").strip()
        if not username:
            raise UserError(f"log in as a curator to {action}")
        if self.curators and username not in self.curators:
            raise UserError(f"{username} is not on the curator list; read-only access")
        return username

    # ------------------------------------------------------------------ inspect
    def detect_category(self, image: Image.Image | None, choice: str | None) -> tuple[str | None, str | None]:
        """The chosen category, or the nearest exemplar's category when auto-detecting."""
        dataset, category = split_category(choice)
        if category or image is None or self.pipeline.exemplars is None:
            return dataset, category
        nearest = self.pipeline.exemplars.nearest(uploaded_image(image), None)
        return (nearest.dataset, nearest.category) if nearest else (None, None)

    def preview_knowledge(self, image, choice) -> tuple[list[str], list[str], str]:
        """(choices, selected, note) for the knowledge pin list before a run."""
        if image is None or self.pipeline.store is None:
            return [], [], "Upload an image to see the knowledge that will be retrieved."
        image = uploaded_image(image, "query image")
        dataset, category = self.detect_category(image, choice)
        if category is None:
            return [], [], "No category: choose one (auto-detection needs normal exemplars)."
        retrieval = self.pipeline.retrieval(image, category, dataset, Question.anomaly())  # as the run will retrieve
        labels = [f"{h.entry.id} — {h.entry.title} ({h.score:.3f})" for h in retrieval.hits]
        note = (
            f"Category **{dataset} / {category}** · retrieved by {retrieval.method} · knowledge version "
            f"{retrieval.version}"
        )
        return labels, labels, note

    def ground_truth(self, image: Image.Image) -> GroundTruth | None:
        """The known truth of a query image (a gallery example or an annotated image), or None."""
        return self.truth.lookup(image, self.pipeline.annotations)

    def inspect(
        self,
        image,
        choice: str | None,
        question: str,
        options: str,
        settings: ReasoningSettings,
        template=None,
        auto_template: bool = True,
        pinned: Sequence[str] | None = None,
        knowledge_version: int | None = None,
        pipeline=None,
    ) -> Iterator[InspectionEvent]:
        """Stream the pipeline's typed events for one run: the memory's evidence, each step, then the `Inspection`.

        `pinned` are knowledge pin labels (`id — title (score)`); `knowledge_version` retrieves from a past
        knowledge version; `pipeline` runs another loaded model.
        """
        if image is None:
            raise UserError("upload an image or pick one from the gallery first")
        query = uploaded_image(image, "query image")
        pipeline = pipeline or self.pipeline
        config = settings.to_config(pipeline.config.reasoning)
        dataset, category = self.detect_category(query, choice)
        pinned_ids = [label.split(" — ")[0] for label in pinned or ()]
        yield from pipeline.inspect_stream(
            query,
            question=parse_question(question, options),
            category=category,
            dataset=dataset,
            template=uploaded_image(template, "template"),
            auto_template=auto_template,
            reasoning=config,
            pinned=pinned_ids or None,
            knowledge_version=knowledge_version,
        )

    def run_card(self, run) -> str:
        """The finished run's card (model hashes, settings, knowledge, image hash, result) as a JSON file path."""
        if run is None or run.inspection is None:
            raise UserError("inspect an image first: the run card records a finished inspection")
        from reason_iad.replay import studio_run_card

        choice, question, options, template = run.asked or (None, "", "", None)
        dataset, category = self.detect_category(run.query, choice)
        return studio_run_card(
            self.pipeline,
            run.inspection,
            run.query,
            parse_question(question, options),
            category,
            dataset,
            uploaded_image(template, "template"),
        )

    # ------------------------------------------------------------------ knowledge
    def list_entries(self, dataset: str | None, category: str | None) -> list[list]:
        """Table rows of the knowledge entries in scope."""
        store = self._store()
        return [
            [s.entry.id, s.entry.dataset, s.entry.category, s.entry.defect, s.entry.title, s.updated_at[:19]]
            for s in store.list(dataset or None, category or None)
        ]

    def search(self, query: str, mode: str, category: str | None) -> list[list]:
        """Search rows (score, id, title)."""
        from reason_iad.knowledge.search import search

        hits = search(self._store(), query, mode, 20, category=category or None)
        return [[round(h.score, 4), h.entry.id, h.entry.title] for h in hits]

    def save_entry(self, entry_id: str, title: str, text: str, username: str | None) -> str:
        """Edit one entry; returns a status line naming the new version."""
        author = self.curator(username)
        version = self._store().update(entry_id, author, title=title, text=text)
        return f"Saved {entry_id} as version {version} (by {author}). The next inspection uses it."

    def add_entry(self, dataset: str, category: str, defect: str, title: str, text: str, username: str | None) -> str:
        """Add an entry; returns a status line."""
        from reason_iad.knowledge.entry import entry_id, make_entry

        author = self.curator(username)
        entry = make_entry(
            id=entry_id(dataset or "", category or "", defect or ""),
            dataset=dataset or "",
            category=category or "",
            defect=defect or "",
            title=title or "",
            text=text or "",
            source="curated",
            author=author,
        )
        return f"Added {entry.id} as version {self._store().add([entry], author)}."

    def delete_entry(self, entry_id: str, confirmed: bool, username: str | None) -> str:
        """Delete an entry after confirmation; returns a status line."""
        author = self.curator(username)
        if not confirmed:
            raise UserError("tick 'confirm delete' first")
        return f"Deleted {entry_id}: version {self._store().delete([entry_id], author)} (restorable)."

    def history(self) -> list[list]:
        """Version history rows, newest first."""
        changes = reversed(self._store().changes())
        return [[c.version, c.timestamp[:19], c.author, c.action, c.summary] for c in changes]

    def restore(self, version: float | None, username: str | None) -> str:
        """Restore a version (as a new version)."""
        author = self.curator(username)
        if version is None:
            raise UserError("choose a version to restore")
        return f"Restored version {int(version)}: now version {self._store().restore(int(version), author)}."

    def diff(self, old: float | None, new: float | None) -> str:
        """A unified diff of the entries between two versions."""
        if old is None or new is None:
            raise UserError("choose two versions")
        store = self._store()

        def lines(version: int) -> list[str]:
            return [f"{s.entry.id}: {s.entry.title} | {s.entry.text}\n" for s in store.list(version=int(version))]

        diff = difflib.unified_diff(lines(int(old)), lines(int(new)), f"version {int(old)}", f"version {int(new)}")
        return "".join(diff) or "No differences."

    def _store(self):
        if self.pipeline.store is None:
            raise UserError("no knowledge base is loaded")
        return self.pipeline.store
