"""Helpers of the impact-check tests: a model whose answer depends on the knowledge, the SynthIAD carpet entries."""

import dataclasses
import hashlib
import json

from reason_iad.knowledge.seed import load_seed_entries
from reason_iad.paths import SEED_KNOWLEDGE_DIR


def letter_for(knowledge, question) -> str:
    """The answer the stand-in model gives: a function of the prompt's knowledge texts and the question."""
    digest = hashlib.sha256(json.dumps([list(knowledge), question.text]).encode()).digest()
    letters = [letter for letter, _ in question.options]
    return letters[digest[0] % len(letters)]


def knowledge_reading_model(monkeypatch) -> list:
    """Every prompt the model is run on (the real `Reasoner`, its answer made to depend on the knowledge)."""
    import reason_iad.pipeline as pipeline_module

    real, calls = pipeline_module.Reasoner, []

    class KnowledgeReader:
        def __init__(self, backend, config):
            self.inner = real(backend, config)

        def start(self, request):
            calls.append(request)
            session = self.inner.start(request)
            result = session.result

            def knowledge_answer():
                return dataclasses.replace(result(), answer=letter_for(request.knowledge, request.question))

            session.result = knowledge_answer
            return session

    monkeypatch.setattr(pipeline_module, "Reasoner", KnowledgeReader)
    return calls


def carpet_entries():
    """The project's seed entries of SynthIAD carpet (a normal entry and four defects)."""
    return [e for e in load_seed_entries(SEED_KNOWLEDGE_DIR) if e.dataset == "SynthIAD" and e.category == "carpet"]
