"""The facade the studio, the CLI and the evaluation call: load once, then retrieve, inspect (streamed), curate.

`Pipeline.load(config)` loads the model and opens the knowledge base; `inspect_stream(...)` retrieves knowledge,
picks a template, runs the reasoning and yields each `ReasoningStep`, then the final `Inspection`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from reason_iad.config import AppConfig, BackendConfig, ReasoningConfig, for_model
from reason_iad.errors import UserError
from reason_iad.reasoning.engine import InspectionRequest, Reasoner
from reason_iad.reasoning.prompt import Question
from reason_iad.types import AnomalySummary, Inspection, InspectionEvent, UsedKnowledge


@dataclass(frozen=True)
class ExemplarUpdate:
    """What an exemplar change did: the template ids touched and the memory bank after it (None without memory)."""

    ids: tuple[str, ...]
    bank: object | None  # memory.BankInfo


@dataclass
class Pipeline:
    """A loaded model with its knowledge base and exemplars (either may be absent)."""

    backend: object
    config: AppConfig
    store: object | None = None  # KnowledgeStore
    exemplars: object | None = None  # ExemplarStore
    annotations: object | None = None  # AnnotationStore
    memory: object | None = None  # VisualMemory (reason_iad.memory), when enabled
    _last_anomaly: tuple | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Normal exemplars have one home: the memory's exemplar table is the pipeline's (one of them may be given)."""
        if self.memory is None:
            return
        if self.exemplars is None:
            self.exemplars = self.memory.exemplar_store
        elif self.exemplars.uri != self.memory.exemplar_store.uri:
            raise ValueError(
                f"the exemplars ({self.exemplars.uri}) and the visual memory ({self.memory.exemplar_store.uri}) "
                "must share one exemplar table: open the memory with exemplars=the pipeline's store"
            )

    @classmethod
    def load(cls, config: AppConfig, with_knowledge: bool = True) -> Pipeline:
        """Load the configured model; open (and on first use create and seed) the knowledge base and exemplars."""
        from reason_iad.backends import load_backend

        backend = load_backend(config.backend)
        if not with_knowledge:
            return cls(backend, config)
        from reason_iad.annotations import AnnotationStore
        from reason_iad.knowledge import default_db_uri, open_store
        from reason_iad.memory.exemplars import ExemplarStore
        from reason_iad.synth.exemplars import seed_exemplars

        store = open_store(config.knowledge)
        uri = config.knowledge.db_uri or default_db_uri()
        exemplars = ExemplarStore(uri, seed=seed_exemplars)
        memory = None
        if config.memory.enabled:
            from reason_iad.memory import open_memory

            memory = open_memory(uri, config.memory, exemplars=exemplars)  # banks are built on first use
        return cls(backend, config, store, exemplars, AnnotationStore(uri), memory)

    def with_model(self, backend: BackendConfig) -> Pipeline:
        """Another model over the same knowledge base, exemplars, annotations and visual memory (for comparisons).

        The reasoning defaults follow the new model (`with_model_defaults`): the embedded model reads answers out
        by likelihood with the evidence line; other models use MMAD's letter read-out with the memory unseen.
        """
        from reason_iad.backends import load_backend

        config = for_model(self.config, backend)
        return dataclasses.replace(self, backend=load_backend(backend), config=config)

    def add_exemplars(
        self, images: Sequence[Image.Image], dataset: str, category: str, author: str, note: str = ""
    ) -> ExemplarUpdate:
        """Add normal exemplars to the one exemplar table (the one-shot templates), and the memory's bank with them.

        Images the category already holds are not stored again; their ids are returned all the same.
        """
        if self.memory is not None:
            bank = self.memory.add_exemplars(dataset, category, list(images), author=author, note=note)
            return ExemplarUpdate(bank.added, bank)
        if self.exemplars is None:
            raise UserError("no exemplar store is loaded")
        ids, _ = self.exemplars.add_many(self.exemplars.prepare(dataset, category, list(images), None, author, note))
        return ExemplarUpdate(tuple(ids), None)

    def remove_exemplar(self, exemplar_id: str, dataset: str, category: str) -> ExemplarUpdate:
        """Remove one normal exemplar from the one exemplar table, and rebuild the memory's bank without it."""
        if self.memory is not None:
            return ExemplarUpdate((exemplar_id,), self.memory.remove_exemplars(dataset, category, [exemplar_id]))
        if self.exemplars is None:
            raise UserError("no exemplar store is loaded")
        self.exemplars.remove([exemplar_id], dataset, category)
        return ExemplarUpdate((exemplar_id,), None)

    def warm_banks(self, categories: Sequence[tuple[str, str]]) -> int:
        """Build the memory banks of these (dataset, category) pairs now, where missing; returns how many it built.

        The studio calls it in a background thread at start, gallery categories first, so a visitor's first
        example does not wait for its bank (about 5-40 s each on a 2-core CPU). A failure is left for the
        inspection that needs the bank to report.
        """
        if self.memory is None:
            return 0
        built = 0
        for dataset, category in categories:
            before = self.memory.bank_info(dataset, category).version
            try:
                built += self.memory.bank_ready(dataset, category).version != before
            except UserError:
                continue
        return built

    def anomaly(self, image: Image.Image, category: str | None, dataset: str | None = None):
        """The visual memory's `AnomalyEvidence` for the image, or None without a memory bank for the category.

        The last answer is kept for the same image object, category and bank version: several questions about one
        image (an evaluation asks up to six) consult the memory once.
        """
        if self.memory is None or not category:
            return None
        version, last = self.memory.store.bank_version, self._last_anomaly  # one manifest read per call
        if last is not None and last[0] is image and last[1] == (category, dataset, version):
            return last[2]
        banks = [(d, c) for d, c in self.memory.categories() if c == category and (dataset in (None, d))]
        evidence = self.memory.inspect(image, *banks[0]) if banks else None
        if evidence is not None:
            version = self.memory.store.bank_version  # a first inspection builds the bank: a new version
        self._last_anomaly = (image, (category, dataset, version), evidence)
        return evidence

    def knowledge_for(
        self,
        image: Image.Image,
        category: str | None,
        dataset: str | None,
        question: Question,
        pinned: Sequence[str] | None,
        version: int | None = None,
        focus: tuple[int, int, int, int] | None = None,
    ) -> tuple[tuple[str, ...], tuple[UsedKnowledge, ...], int | None]:
        """Prompt texts, what was used, and the knowledge version: the pinned entries, else the retrieved ones.

        `version` retrieves from a past version of the knowledge base (read-only); None uses the latest. `focus`
        (the visual memory's box of a suspicious image) makes image retrieval look at a crop around it.
        """
        if self.store is None:
            raise UserError("no knowledge base is loaded; use mode plain or latent, or load one")
        store = self.store if version is None else self.store.at_version(version)
        if pinned is not None:
            found = store.get_many(list(pinned))
            missing = sorted(set(pinned) - set(found))
            if missing:
                raise UserError(f"pinned knowledge entries no longer exist: {missing}")
            entries = [found[i].entry for i in pinned]
            used = tuple(UsedKnowledge(e.id, e.title, 1.0, True) for e in entries)
            return tuple(e.mmad_text for e in entries), used, store.version
        retrieval = self.retrieval(image, category, dataset, question, version, focus)
        used = tuple(UsedKnowledge(h.entry.id, h.entry.title, h.score, False) for h in retrieval.hits)
        return retrieval.texts, used, retrieval.version

    def retrieval(
        self,
        image: Image.Image,
        category: str | None,
        dataset: str | None,
        question: Question,
        version: int | None = None,
        focus: tuple[int, int, int, int] | None | str = "memory",
    ):
        """The knowledge `Retrieval` an inspection of the image makes (the studio previews it before a run).

        `focus="memory"` asks the visual memory where to look, as `inspect_stream` does; a box or None is used as is.
        """
        from reason_iad.knowledge.search import retrieve

        if self.store is None:
            raise UserError("no knowledge base is loaded; use mode plain or latent, or load one")
        if focus == "memory":
            focus = focus_of(self.anomaly(image, category, dataset))
        knowledge = self.config.knowledge
        return retrieve(
            self.store if version is None else self.store.at_version(version),
            image,
            category,
            dataset,
            k=knowledge.top_k,
            include_normal=knowledge.include_normal_entry,
            question=question.text,
            focus=focus,
        )

    def inspect_stream(
        self,
        image: Image.Image,
        question: Question | None = None,
        category: str | None = None,
        dataset: str | None = None,
        template: Image.Image | None = None,
        auto_template: bool = False,
        reasoning: ReasoningConfig | None = None,
        pinned: Sequence[str] | None = None,
        knowledge_version: int | None = None,
        knowledge_texts: Sequence[str] | None = None,
        use_memory: bool = True,
    ) -> Iterator[InspectionEvent]:
        """Yield the visual memory's `AnomalyEvidence` (when consulted), each reasoning step, then the `Inspection`.

        `knowledge_version` retrieves from that past version of the knowledge base (None: the latest).
        `knowledge_texts` puts the given texts in the prompt instead of retrieving (a file, a run card);
        `use_memory=False` leaves the visual memory unconsulted.
        """
        question = question or Question.anomaly()
        reasoning = reasoning or self.config.reasoning
        evidence = self.anomaly(image, category, dataset) if use_memory else None
        if evidence is not None:
            yield evidence
        texts, used, version = ((), (), None)
        if reasoning.uses_knowledge and knowledge_texts is not None:
            texts = tuple(knowledge_texts)
        elif reasoning.uses_knowledge:
            texts, used, version = self.knowledge_for(
                image, category, dataset, question, pinned, knowledge_version, focus_of(evidence)
            )
        query, line, prior, summary = apply_evidence(image, evidence, reasoning.evidence)
        source = "given" if template is not None else ""
        if template is None and auto_template and category and self.exemplars is not None:
            exemplar = self.exemplars.nearest(image, category, dataset)
            if exemplar is not None:
                template, source = exemplar.image, exemplar.id
        request = InspectionRequest(query, question, template, category, texts, evidence=line, patch_prior=prior)
        session = Reasoner(self.backend, reasoning).start(request)
        yield from session.iterate()
        yield dataclasses.replace(
            session.result(), knowledge=used, knowledge_version=version, template=source, anomaly=summary
        )

    def inspect(self, image: Image.Image, **options) -> Inspection:
        """Run `inspect_stream` to the end and return the `Inspection`."""
        *_, inspection = self.inspect_stream(image, **options)
        return inspection


def focus_of(evidence) -> tuple[int, int, int, int] | None:
    """Where retrieval should look: the visual memory's box unless it found the image normal (or there is none)."""
    if evidence is None or evidence.verdict == "normal":
        return None
    return tuple(int(v) for v in evidence.box)


def apply_evidence(image: Image.Image, evidence, mode: str):
    """(image for the model, evidence line, patch prior, summary) for the chosen evidence mode.

    Args:
        image: The query image.
        evidence: The visual memory's `AnomalyEvidence` for it, or None (then the image is returned unchanged).
        mode: `none`, `highlight`, `contour`, `box` (drawn on a copy of the image) or `text` (the line).
    """
    if evidence is None:
        return image, "", None, None
    from reason_iad.memory import draw_evidence, evidence_text, token_prior
    from reason_iad.memory.evidence import VISUAL_MODES

    row, col = np.unravel_index(int(np.argmax(evidence.anomaly_map)), evidence.anomaly_map.shape)
    summary = AnomalySummary(
        evidence.score,
        evidence.raw_score,
        evidence.verdict,
        evidence.region,
        tuple(int(v) for v in evidence.box),
        mode,
        (int(col), int(row)),
    )
    query = draw_evidence(image, evidence, mode) if mode in VISUAL_MODES else image
    line = evidence_text(evidence) if mode == "text" else ""
    return query, line, (lambda boxes: token_prior(evidence, boxes)), summary
