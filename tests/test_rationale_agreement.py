"""The rationale check: a verdict or a named option that contradicts the read-out answer counts as disagreement."""

import pytest

from reason_iad.eval.answers import AnswerRecord
from reason_iad.eval.consistency import agreement, rationale_agrees
from reason_iad.eval.score import score_answers

AD = {"A": "No.", "B": "Yes."}
DC = {"A": "Scratch", "B": "Liquid stain", "C": "Discoloration", "D": "Hole"}
DL = {"A": "Top left", "B": "Right", "C": "Top right", "D": "Center"}


def record(subtask, options, answer, rationale, correct="A"):
    return AnswerRecord(
        id=f"x.png#{len(rationale)}",
        image="x.png",
        dataset="D",
        category="wood",
        subtask=subtask,
        is_normal=False,
        correct_answer=correct,
        readout_answer=answer,
        parsed_answer=None,
        options=options,
        rationale=rationale,
    )


@pytest.mark.parametrize(
    ("subtask", "options", "answer", "text", "expected"),
    [
        ("Anomaly Detection", AD, "B", "Hole at the top left of the wood.", None),  # names no verdict word
        ("Anomaly Detection", AD, "B", "The wood looks normal, no defect is visible.", False),
        ("Anomaly Detection", AD, "A", "The wood looks normal, no defect is visible.", True),
        ("Anomaly Detection", AD, "A", "A defect at the right of the board.", False),
        ("Anomaly Detection", AD, "B", "A defect at the right of the board.", True),
        ("Defect Classification", DC, "D", "Hole at the top left of the wood.", True),
        ("Defect Classification", DC, "D", "Scratch at the top left of the wood.", False),
        ("Defect Classification", DC, "D", "The wood looks normal, no defect is visible.", False),
        ("Defect Classification", DC, "D", "Something at the top left.", None),
        ("Defect Localization", DL, "C", "Hole at the top right of the wood.", True),  # not "Right"
        ("Defect Localization", DL, "B", "Hole at the top right of the wood.", False),
        ("Defect Description", DC, "A", "The wood looks normal.", False),
        ("Object Classification", {"A": "Wood", "B": "Tile"}, "A", "Tile at the top.", None),
        ("Defect Classification", DC, "D", "", None),
    ],
)
def test_verdicts_and_named_options_are_checked_against_the_answer(subtask, options, answer, text, expected):
    assert rationale_agrees(record(subtask, options, answer, text)) is expected


def test_the_share_is_over_rationales_that_commit_and_reaches_the_scores():
    records = [
        record("Defect Classification", DC, "D", "Hole at the top left of the wood."),
        record("Defect Classification", DC, "D", "Scratch at the top left of the wood."),
        record("Defect Classification", DC, "D", "Something odd."),
    ]
    assert agreement(records) == (1, 2)
    assert score_answers(records).rationale_agreement == (1, 2)
    assert score_answers([record("Defect Classification", DC, "D", "")]).rationale_agreement == (0, 0)
