"""The explanation: decoded after the answer with the kept patches in place, never the option text again."""

import dataclasses
import json

import torch
from PIL import Image

from fake_backend import FakeBackend, Generation
from reason_iad.config import ReasoningConfig
from reason_iad.reasoning.engine import InspectionRequest, Reasoner
from reason_iad.reasoning.prompt import Question
from reason_iad.reasoning.rationale import strip_option_echo
from reason_iad.types import Evidence, Inspection

OPTIONS = (("A", "Scratch"), ("B", "Hole"), ("C", "Color stain"))
HELPFUL = (0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 2.5) + (0.0,) * 8
CONFIG = ReasoningConfig(mode="latent", num_latent_tokens=2, num_steps=3, reward_weights={"answer": 1.0})


class Talkative(FakeBackend):
    def generate(self, prefix, suffix_embeds, max_new_tokens=64, min_new_tokens=0):
        super().generate(prefix, suffix_embeds, max_new_tokens, min_new_tokens)
        return Generation("A. Scratch. A thin bright line runs across the top left.", (11,))


def _run(config, backend=None):
    backend = backend or Talkative(gains=HELPFUL, attention_scores={0: HELPFUL})
    question = Question("What type of defect is it?", OPTIONS)
    session = Reasoner(backend, config).start(InspectionRequest(Image.new("RGB", (64, 64)), question))
    for _ in session.iterate():
        pass
    backend.query_embeddings = session.query.embeddings
    return backend, session.result()


def test_strip_option_echo_removes_a_leading_restatement_only():
    assert strip_option_echo("B. Hole. A round opening.", OPTIONS, "B") == "A round opening."
    assert strip_option_echo("B) A round opening.", OPTIONS, "B") == "A round opening."
    assert strip_option_echo("Hole\nA round opening at the center.", OPTIONS, "B") == "A round opening at the center."
    kept = "Holes like this come from drilling."
    assert strip_option_echo(kept, OPTIONS, "B") == kept
    assert strip_option_echo("A round opening.", OPTIONS, "B") == "A round opening."


def test_followup_rationale_is_asked_after_the_answer_with_the_patches_in_place():
    backend, inspection = _run(CONFIG)
    [suffix] = backend.generated
    question_ids = backend.encode_text(CONFIG.rationale_prompt)
    assert inspection.injected, "the fake keeps helpful patches"
    assert inspection.answer == "A" and inspection.rationale == "A thin bright line runs across the top left."
    asked = backend.embed_tokens(torch.tensor(question_ids))
    rows = suffix[0]
    assert any(torch.allclose(rows[i : i + len(asked)], asked) for i in range(len(rows) - len(asked) + 1))
    for patch in inspection.injected:  # the kept patches sit in the rationale's suffix too
        assert any(torch.allclose(row, backend.query_embeddings[patch.token_index]) for row in rows)


def test_continue_rationale_forces_the_answer_phrase_first():
    backend, inspection = _run(dataclasses.replace(CONFIG, rationale="continue"))
    [suffix] = backend.generated
    forced = backend.embed_tokens(torch.tensor(backend.encode_text(inspection.answer_text + "\n")))
    assert torch.allclose(suffix[0, -len(forced) :], forced)  # generation starts right after the answer phrase


def test_no_rationale_generates_nothing():
    backend, inspection = _run(dataclasses.replace(CONFIG, rationale="none"))
    assert backend.generated == [] and inspection.rationale == ""


def test_the_evidence_list_round_trips_through_json():
    _, inspection = _run(CONFIG)
    evidence = inspection.evidence
    assert evidence.patches == inspection.injected and evidence.patches
    data = json.loads(inspection.to_json())
    assert Evidence.from_dict(data["evidence"]) == evidence
    assert any(line.startswith("patch (") and "reward +" in line for line in evidence.lines())
    assert isinstance(inspection, Inspection)


def test_reply_is_the_free_answer_after_the_header_with_its_letter_kept():
    """The harness's `reply`: decoded straight after the header, nothing forced, nothing stripped."""
    backend, inspection = _run(dataclasses.replace(CONFIG, rationale="reply"))
    [suffix] = backend.generated
    header = backend.embed_tokens(torch.tensor((7, 8)))
    assert torch.allclose(suffix[0, -2:], header)  # ends with the assistant header: a free reply
    assert inspection.rationale == "A. Scratch. A thin bright line runs across the top left."
