"""The facade the studio, the CLI and the evaluation call: load once, then retrieve, inspect (streamed), curate.

`Pipeline.load(config)` loads the model and opens the knowledge base; `inspect_stream(...)` retrieves knowledge,
picks a template, runs the reasoning and yields each `ReasoningStep`, then the final `Inspection`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from PIL import Image

from reason_iad.config import AppConfig, ReasoningConfig
from reason_iad.errors import UserError
from reason_iad.reasoning.engine import InspectionRequest, Reasoner
from reason_iad.reasoning.prompt import Question
from reason_iad.types import AnomalySummary, Inspection, ReasoningStep, UsedKnowledge


@dataclass
class Pipeline:
    """A loaded model with its knowledge base and exemplars (either may be absent)."""

    backend: object
    config: AppConfig
    store: object | None = None  # KnowledgeStore
    exemplars: object | None = None  # ExemplarStore
    annotations: object | None = None  # AnnotationStore
    memory: object | None = None  # VisualMemory (reason_iad.memory), when enabled

    @classmethod
    def load(cls, config: AppConfig, with_knowledge: bool = True) -> Pipeline:
        """Load the configured model; open (and on first use create and seed) the knowledge base and exemplars."""
        from reason_iad.backends import load_backend

        backend = load_backend(config.backend)
        if not with_knowledge:
            return cls(backend, config)
        from reason_iad.annotations import AnnotationStore
        from reason_iad.knowledge import default_db_uri, open_store
        from reason_iad.knowledge.embedders import ThumbnailEmbedder
        from reason_iad.knowledge.exemplars import ExemplarStore, seed_exemplars
        from reason_iad.paths import EXAMPLES_DIR

        store = open_store(config.knowledge)
        uri = config.knowledge.db_uri or default_db_uri()
        exemplars = ExemplarStore(uri, ThumbnailEmbedder())
        seed_exemplars(exemplars, EXAMPLES_DIR)
        memory = None
        if config.memory.enabled:
            from reason_iad.memory import open_memory

            memory = open_memory(uri, config.memory)  # SynthIAD banks are seeded lazily, per category
        return cls(backend, config, store, exemplars, AnnotationStore(uri), memory)

    def anomaly(self, image: Image.Image, category: str | None, dataset: str | None = None):
        """The visual memory's `AnomalyEvidence` for the image, or None without a memory bank for the category."""
        if self.memory is None or not category:
            return None
        banks = [(d, c) for d, c in self.memory.categories() if c == category and (dataset in (None, d))]
        if not banks and seed_memory(self.memory, [category]):
            banks = [(d, c) for d, c in self.memory.categories() if c == category]
        if not banks:
            return None
        return self.memory.inspect(image, *banks[0])

    def knowledge_for(
        self, image: Image.Image, category: str | None, dataset: str | None, question: Question,
        pinned: Sequence[str] | None,
    ) -> tuple[tuple[str, ...], tuple[UsedKnowledge, ...], int | None]:  # fmt: skip
        """Prompt texts, what was used, and the knowledge version: the pinned entries, else the retrieved ones."""
        if self.store is None:
            raise UserError("no knowledge base is loaded; use mode plain or latent, or load one")
        if pinned is not None:
            found = self.store.get_many(list(pinned))
            missing = sorted(set(pinned) - set(found))
            if missing:
                raise UserError(f"pinned knowledge entries no longer exist: {missing}")
            entries = [found[i].entry for i in pinned]
            used = tuple(UsedKnowledge(e.id, e.title, 1.0, True) for e in entries)
            return tuple(e.mmad_text for e in entries), used, self.store.version
        from reason_iad.knowledge.search import retrieve

        knowledge = self.config.knowledge
        retrieval = retrieve(self.store, image, category, dataset, k=knowledge.top_k,
                             include_normal=knowledge.include_normal_entry, question=question.text)  # fmt: skip
        used = tuple(UsedKnowledge(h.entry.id, h.entry.title, h.score, False) for h in retrieval.hits)
        return retrieval.texts, used, retrieval.version

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
    ) -> Iterator[ReasoningStep | Inspection]:
        """Yield each reasoning step as it is computed, then the final `Inspection`."""
        question = question or Question.anomaly()
        reasoning = reasoning or self.config.reasoning
        texts, used, version = ((), (), None)
        if reasoning.uses_knowledge:
            texts, used, version = self.knowledge_for(image, category, dataset, question, pinned)
        evidence = self.anomaly(image, category, dataset)
        if evidence is not None:
            yield evidence
        query, line, prior, summary = _apply_evidence(image, evidence, reasoning.evidence)
        source = "given" if template is not None else ""
        if template is None and auto_template and category and self.exemplars is not None:
            exemplar = self.exemplars.nearest(image, category, dataset)
            if exemplar is not None:
                template, source = exemplar.image, exemplar.id
        request = InspectionRequest(query, question, template, category, texts, evidence=line, patch_prior=prior)
        session = Reasoner(self.backend, reasoning).start(request)
        yield from session.iterate()
        yield dataclasses.replace(session.result(), knowledge=used, knowledge_version=version, template=source,
                                  anomaly=summary)  # fmt: skip

    def inspect(self, image: Image.Image, **options) -> Inspection:
        """Run `inspect_stream` to the end and return the `Inspection`."""
        *_, inspection = self.inspect_stream(image, **options)
        return inspection


def _apply_evidence(image: Image.Image, evidence, mode: str):
    """(image for the model, evidence line, patch prior, summary) for the chosen evidence mode."""
    if evidence is None:
        return image, "", None, None
    from reason_iad.memory import draw_evidence, evidence_text, token_prior

    summary = AnomalySummary(evidence.score, evidence.raw_score, evidence.verdict, evidence.region,
                             tuple(int(v) for v in evidence.box), mode)  # fmt: skip
    query = draw_evidence(image, evidence, mode) if mode in ("highlight", "contour", "box") else image
    line = evidence_text(evidence) if mode == "text" else ""
    return query, line, (lambda boxes: token_prior(evidence, boxes)), summary


def seed_memory(memory, categories=None, per_category: int = 8, seed: int = 7) -> int:
    """Give SynthIAD categories (default: all) a bank of rendered normal exemplars; returns how many were added.

    Called lazily on a category's first inspection (about 6-15 s on a 2-core CPU). The renders use a seed kept
    apart from training and evaluation data; categories that are not SynthIAD's are left alone.
    """
    from reason_iad.synth import CATEGORIES, render_sample
    from reason_iad.synth.catalog import DATASET

    present = set(memory.categories())
    added = 0
    for name in categories or CATEGORIES:
        if name not in CATEGORIES or (DATASET, name) in present:
            continue
        images = [render_sample(name, None, seed * 1000 + i, 256).image for i in range(per_category)]
        memory.add_exemplars(DATASET, name, images, labels=[f"normal {i}" for i in range(per_category)])
        added += len(images)
    return added
