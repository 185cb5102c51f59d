"""`--parser mmad` reads replies exactly as MMAD's scripts do; `strict` reports what it cannot tell."""

import re
from difflib import get_close_matches

import pytest

from reason_iad.errors import UserError
from reason_iad.eval.answers import AnswerRecord
from reason_iad.eval.parse import parse_answer, parse_answer_mmad, parse_reply, reparsed

YES_NO = {"A": "Yes.", "B": "No."}
DEFECTS = {"A": "Contamination", "B": "Small breakage", "C": "Large breakage", "D": "Damaged thread"}
REPLIES = [
    "B",
    "The answer is C.",
    "b",
    "(b)",
    "the answer is d",
    "Answer: E",
    "A or B? I pick B",
    "yes",
    "I can see a large breakage on the rim",
    "qqq zzz",
    "",
    "   ",
    "maybe",
    "-K\ufffdcar\ufffdpswer",
    "no defect",
    "Damaged thread near the top",
]


def mmad_reference(response_text, options):
    """MMAD's evaluation/examples/GPT4/gpt4v.py `parse_answer` as shipped, then `[-1]` as the query scripts do."""
    answers = re.compile(r"\b([A-E])\b").findall(response_text)
    if len(answers) == 0 and options is not None:
        closest_matches = get_close_matches(response_text, list(options.values()), n=1, cutoff=0.0)
        if closest_matches:
            for key, value in options.items():
                if value == closest_matches[0]:
                    answers.append(key)
                    break
    return answers[-1]


@pytest.mark.parametrize("options", [YES_NO, DEFECTS])
@pytest.mark.parametrize("reply", REPLIES)
def test_mmad_parser_is_mmads_and_always_picks_a_letter(reply, options):
    assert parse_answer_mmad(reply, options) == mmad_reference(reply, options)
    assert parse_reply(reply, options, "mmad") is not None
    assert parse_reply(reply, options, "strict") == parse_answer(reply, options)


def test_the_parsers_differ_where_strict_cannot_tell():
    assert parse_answer("qqq zzz", DEFECTS) is None and parse_answer_mmad("qqq zzz", DEFECTS) in DEFECTS
    assert parse_answer("Answer: E", YES_NO) is None and parse_answer_mmad("Answer: E", YES_NO) == "E"  # scored wrong
    with pytest.raises(UserError, match="unknown reply parser 'lenient'"):
        parse_reply("A", YES_NO, "lenient")


def test_reparsed_reads_the_stored_replies_again():
    record = AnswerRecord(
        id="x#0",
        image="x",
        dataset="D",
        category="c",
        subtask="Anomaly Detection",
        is_normal=True,
        correct_answer="B",
        readout_answer="B",
        parsed_answer=None,
        options=dict(YES_NO),
        reply="no defect",
    )
    assert reparsed([record], "strict") == (record,)
    [mmad] = reparsed([record], "mmad")
    assert mmad.parsed_answer == mmad_reference("no defect", YES_NO) and mmad.reply == record.reply
    with pytest.raises(UserError, match="reply parser"):
        reparsed([record], "lenient")
