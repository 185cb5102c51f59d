"""The Compare tab's logic: the same image and question under up to four configurations.

A configuration (`CompareSlot`) is a mode, a knowledge version (latest or a past one, read-only) and one of the
loaded models: the studio's own, or a second one loaded here from a local folder or hub id (sharing the knowledge
base, exemplars and visual memory). Runs go one after another on this replica's model lock.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from demo.handlers import ReasoningSettings, StudioHandlers
from reason_iad.config import MODES, BackendConfig
from reason_iad.errors import UserError
from reason_iad.types import Inspection

LATEST = "latest"
MAX_SLOTS = 4
MAX_MODELS = 2  # the studio's model plus one more: memory on a Space is the limit


@dataclass(frozen=True)
class CompareSlot:
    """One configuration of a comparison."""

    mode: str = "full"
    knowledge_version: int | None = None  # None: the latest
    model: str = ""  # a name from `CompareHandlers.model_names()`; "": the studio's model

    def label(self, show_model: bool) -> str:
        """A short name for tables and legends: `full · v12 · model`."""
        parts = [self.mode, f"v{self.knowledge_version}" if self.knowledge_version is not None else LATEST]
        return " · ".join(parts + ([self.model] if show_model and self.model else []))


def parse_version(choice: str | float | None) -> int | None:
    """A knowledge-version dropdown value ("latest", "12" or "12 — edit by ana") as a version number or None."""
    if choice is None or str(choice).strip() in ("", LATEST):
        return None
    head = str(choice).split(" — ")[0].strip()
    try:
        return int(float(head))
    except ValueError:
        raise UserError(f"not a knowledge version: {choice!r}") from None


class CompareHandlers:
    """The loaded models and the comparison runs."""

    def __init__(self, studio: StudioHandlers) -> None:
        self.studio = studio
        self.models = {self.active_name: studio.pipeline}
        self._lock = threading.Lock()

    @property
    def active_name(self) -> str:
        """The studio model's name in the model lists."""
        return f"{self.studio.pipeline.config.backend.model} (studio)"

    def model_names(self) -> list[str]:
        """Names of the loaded models, the studio's first."""
        return list(self.models)

    def version_choices(self) -> list[str]:
        """Knowledge-version dropdown values: latest, then every recorded version, newest first."""
        if self.studio.pipeline.store is None:
            return [LATEST]
        rows = self.studio.history()
        return [LATEST] + [f"{row[0]} — {row[3]} by {row[2]}, {row[1]}" for row in rows]

    def load_model(
        self, model: str, quantization: str = "none", device: str = "auto", username: str | None = None
    ) -> str:
        """Load a second model (local folder or hub id; curators only); returns a status line.

        It replaces an earlier second model, for every user of this replica.
        """
        self.studio.curator(username, "load a model")
        model = (model or "").strip()
        if not model:
            raise UserError("type a model folder or Hugging Face id to load")
        config = BackendConfig(model=model, quantization=quantization, device=device)
        with self._lock:
            pipeline = self.studio.pipeline.with_model(config)
            for name in list(self.models)[MAX_MODELS - 1 :]:
                del self.models[name]
            name = f"{model} ({quantization})" if quantization != "none" else model
            self.models[name] = pipeline
        return f"Loaded {name}; it can now be chosen as a configuration's model."

    def compare(
        self,
        image,
        choice: str | None,
        question: str,
        options: str,
        slots: Sequence[CompareSlot],
        steps: int,
        latents: int,
    ) -> list[tuple[str, Inspection]]:
        """Run each configuration on the same image and question, one after another; (label, inspection) each."""
        if not slots:
            raise UserError("choose at least one configuration to compare")
        if len(slots) > MAX_SLOTS:
            raise UserError(f"compare at most {MAX_SLOTS} configurations")
        for slot in slots:
            if slot.mode not in MODES:
                raise UserError(f"mode must be one of {', '.join(MODES)}, not {slot.mode!r}")
            if slot.model and slot.model not in self.models:
                raise UserError(f"model {slot.model!r} is not loaded; load it first")
        show_model = len({slot.model or self.active_name for slot in slots}) > 1
        results = []
        for slot in slots:
            pipeline = self.models.get(slot.model or self.active_name)
            settings = dataclasses.replace(  # every other control as the loaded configuration sets it
                ReasoningSettings.from_config(pipeline.config.reasoning),
                mode=slot.mode,
                num_steps=steps,
                num_latent_tokens=latents,
            )
            stream = self.studio.inspect(
                image,
                choice,
                question,
                options,
                settings,
                knowledge_version=slot.knowledge_version,
                pipeline=pipeline,
            )
            *_, inspection = stream
            results.append((slot.label(show_model), inspection))
        return results
