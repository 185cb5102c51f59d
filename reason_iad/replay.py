"""Run cards of a pipeline's inspections, and their replay (`reason-iad infer --card` / `--replay`).

`card_for(pipeline, inspection, ...)` fills a card with what the pipeline knows (model hashes, knowledge texts at
the inspection's version); `studio_run_card(...)` writes one where a download button can serve it.
`replay(card, pipeline, image)` reruns a card with its settings: the same model, reasoning settings and seed,
the same template, and the knowledge entries pinned by id at the card's version when the store still has them
as they were (else the card's own texts), then compares the answer and the option probabilities.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from reason_iad.config import AppConfig, BackendConfig, KnowledgeConfig, ReasoningConfig, with_model_defaults
from reason_iad.errors import UserError
from reason_iad.runcard import RunCard, image_sha256, model_fingerprint, run_card, write_run_card
from reason_iad.types import Inspection

TOLERANCE = 1e-5


def model_folder(backend: BackendConfig) -> Path | None:
    """Where the model's files are: the embedded assets, a local folder, or its hub cache snapshot (None: unknown)."""
    from reason_iad.config import DEFAULT_MODEL

    if backend.model == DEFAULT_MODEL:
        from reason_iad.backends.embedded import INSPECTOR_DIR, inspector_available

        return INSPECTOR_DIR if inspector_available() else None
    local = Path(backend.model).expanduser()
    if local.is_dir():
        return local
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(backend.model, local_files_only=True))
    except (ImportError, OSError, ValueError):  # not in the cache (or not a hub id): hash the spec
        return None


def knowledge_texts(pipeline, inspection: Inspection) -> dict[str, str]:
    """The prompt text of each knowledge entry the inspection used, read at its knowledge version."""
    if not inspection.knowledge or pipeline.store is None:
        return {}
    store = pipeline.store
    if inspection.knowledge_version is not None:
        store = store.at_version(inspection.knowledge_version)
    found = store.get_many([k.id for k in inspection.knowledge])
    return {entry_id: stored.entry.mmad_text for entry_id, stored in found.items()}


def card_for(
    pipeline,
    inspection: Inspection,
    image: Image.Image,
    question,
    category: str | None = None,
    dataset: str | None = None,
    template: Image.Image | None = None,
    image_path: str = "",
    template_path: str = "",
    file_texts: tuple[str, ...] | None = None,
) -> dict:
    """The run card of an inspection made by `pipeline` (see `reason_iad.runcard.run_card`).

    `file_texts`: the knowledge texts when they came from a file rather than the pipeline's store.
    """
    from reason_iad.knowledge import default_db_uri

    backend = pipeline.config.backend
    db = (pipeline.config.knowledge.db_uri or default_db_uri()) if pipeline.store is not None else ""
    texts = file_texts if file_texts is not None else knowledge_texts(pipeline, inspection)
    card = run_card(
        inspection,
        image,
        question,
        category,
        dataset,
        backend=dataclasses.asdict(backend),
        fingerprint=model_fingerprint(backend.model, model_folder(backend)),
        knowledge_texts=texts,
        knowledge_db=db,
        template=template,
        image_path=image_path,
        template_path=template_path,
    )
    return card | {"memory": dataclasses.asdict(pipeline.config.memory)}


def studio_run_card(
    pipeline,
    inspection: Inspection,
    image: Image.Image,
    question,
    category: str | None = None,
    dataset: str | None = None,
    template: Image.Image | None = None,
    folder: str | Path | None = None,
) -> str:
    """Write the inspection's run card into `folder` (default: a new temporary one); returns its path.

    This is what the studio's download button serves.
    """
    card = card_for(pipeline, inspection, image, question, category, dataset, template)
    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="reason-iad-card-"))
    stamp = card["created_at"].replace(":", "").replace("-", "")[:15]
    return str(write_run_card(card, folder / f"run-card-{stamp}-{card['input']['image']['sha256'][:8]}.json"))


def replay_config(card: RunCard, db: str = "") -> AppConfig:
    """The configuration a card was made with: its model, reasoning settings and memory; `db` overrides its store."""
    from reason_iad.config import MemoryConfig
    from reason_iad.knowledge import follow_store

    backend = BackendConfig(model=card.model, quantization=card.quantization, device=card.device, dtype=card.dtype)
    try:
        reasoning = ReasoningConfig(**card.reasoning)
        memory = MemoryConfig(**card.data["memory"]) if isinstance(card.data.get("memory"), dict) else None
    except TypeError as err:
        raise UserError(f"the card's settings are not this version's: {err}") from None
    config = with_model_defaults(AppConfig(backend=backend, knowledge=KnowledgeConfig(db_uri=db or card.knowledge_db)))
    config = dataclasses.replace(config, reasoning=reasoning, memory=memory or config.memory)
    if card.knowledge_source == "store" or card.template_source not in ("", "given") or config.memory.enabled:
        config = dataclasses.replace(config, knowledge=follow_store(config.knowledge))
    return config


@dataclass(frozen=True)
class Replay:
    """A rerun card: the new inspection, how its knowledge was reproduced, and whether it matches the card."""

    inspection: Inspection
    knowledge: str
    notes: tuple[str, ...]
    card_answer: str
    card_probs: dict[str, float]
    tolerance: float = TOLERANCE

    @property
    def max_prob_diff(self) -> float:
        """Largest |p - p_card| over the options of either (an option missing on one side counts fully)."""
        letters = set(self.card_probs) | set(self.inspection.option_probs)
        return max(abs(self.inspection.option_probs.get(k, 0.0) - self.card_probs.get(k, 0.0)) for k in letters)

    @property
    def matches(self) -> bool:
        """Same answer and every probability within the tolerance."""
        return self.inspection.answer == self.card_answer and self.max_prob_diff <= self.tolerance

    def lines(self) -> list[str]:
        """The comparison, for the command line."""
        probs = "  ".join(
            f"{k}={v:.6f} (card {self.card_probs.get(k, float('nan')):.6f})"
            for k, v in self.inspection.option_probs.items()
        )
        same = self.inspection.answer == self.card_answer
        within = self.max_prob_diff <= self.tolerance
        return [
            f"knowledge {self.knowledge}",
            *(f"note      {n}" for n in self.notes),
            f"answer    {self.inspection.answer} (card {self.card_answer}): {'match' if same else 'MISMATCH'}",
            f"options   {probs}",
            f"          max |difference| {self.max_prob_diff:.2e} {'<=' if within else '>'} {self.tolerance:.0e}: "
            f"{'match' if within else 'MISMATCH'}",
            f"replay    {'MATCH' if self.matches else 'MISMATCH'}",
        ]


def check_image(card: RunCard, image: Image.Image, what: str = "image", expected: str | None = None) -> None:
    """Refuse an image whose pixels are not the card's (a replay of another image compares nothing)."""
    expected = expected or card.image_sha256
    if image_sha256(image) != expected:
        raise UserError(
            f"the {what}'s pixels differ from the card's (sha256 {expected[:12]}…); pass the {what} "
            "the card was made from"
        )


def replay(card: RunCard, pipeline, image: Image.Image, template: Image.Image | None = None) -> Replay:
    """Rerun a card with `pipeline` (loaded with `replay_config(card)`) on its image; see the module docstring."""
    from reason_iad.reasoning.prompt import Question

    check_image(card, image)
    question = Question(card.question_text, card.options)
    template = _template(card, pipeline, template)
    notes = _model_notes(card, pipeline)
    pinned = _pinnable(card, pipeline)
    options = {
        "question": question,
        "category": card.category,
        "dataset": card.dataset,
        "template": template,
        "reasoning": pipeline.config.reasoning,
    }
    if pinned is not None:
        inspection = pipeline.inspect(image, pinned=pinned, knowledge_version=card.knowledge_version, **options)
        how = f"pinned by id at version {card.knowledge_version} ({len(pinned)} entries)"
    else:
        texts = tuple(e.text for e in card.entries)
        inspection = pipeline.inspect(
            image, knowledge_texts=texts, use_memory=bool(card.data.get("anomaly")), **options
        )
        how = f"the card's own texts ({len(card.entries)} entries)" if card.entries else "none"
    if _anomaly_differs(card.data.get("anomaly"), inspection.anomaly):
        notes.append("the visual memory's verdict differs from the card's (its bank changed since)")
    if card.template_source not in ("", "given"):
        inspection = dataclasses.replace(inspection, template=card.template_source)
    return Replay(inspection, how, tuple(notes), card.answer, card.option_probs)


def _anomaly_differs(recorded: dict | None, now) -> bool:
    """Whether the memory's summary now differs from the card's (verdict, region, box; score within 1e-6)."""
    if not recorded or now is None:
        return bool(recorded) != (now is not None)
    same_place = (recorded.get("verdict"), recorded.get("region"), list(recorded.get("box") or ())) == (
        now.verdict,
        now.region,
        list(now.box),
    )
    return not same_place or abs(float(recorded.get("score", -1.0)) - now.score) > 1e-6


def _template(card: RunCard, pipeline, given: Image.Image | None) -> Image.Image | None:
    if card.template_source == "":
        return None
    if card.template_source == "given":
        if given is None:
            from reason_iad.images import load_image

            if not card.template_path or not Path(card.template_path).is_file():
                raise UserError("the card used a given template that is not at its recorded path; pass --template")
            given = load_image(card.template_path, "template")
        check_image(card, given, "template", card.template_sha256)
        return given
    exemplars = [] if pipeline.exemplars is None else pipeline.exemplars.list(card.category, card.dataset)
    found = next((e for e in exemplars if e.id == card.template_source), None)
    if found is None:
        raise UserError(f"the card's template exemplar {card.template_source!r} no longer exists")
    return found.image


def _model_notes(card: RunCard, pipeline) -> list[str]:
    backend = pipeline.config.backend
    now = model_fingerprint(backend.model, model_folder(backend))["weights_sha256"]
    return (
        []
        if now == card.weights_sha256
        else [f"the model's weights differ from the card's (sha256 {now[:12]}… now, {card.weights_sha256[:12]}… then)"]
    )


def _pinnable(card: RunCard, pipeline) -> list[str] | None:
    """The card's entry ids when the store holds them, with the same texts, at the card's version; else None."""
    if card.knowledge_source != "store" or pipeline.store is None or card.knowledge_version is None:
        return None
    ids = [e.id for e in card.entries]
    try:
        found = pipeline.store.at_version(card.knowledge_version).get_many(ids)
    except UserError:  # that version is gone
        return None
    same = all(e.id in found and found[e.id].entry.mmad_text == e.text for e in card.entries)
    return ids if same else None
