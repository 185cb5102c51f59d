import pytest

from reason_iad.eval.parse import match_option_text, parse_answer

YES_NO = {"A": "Yes.", "B": "No."}
DEFECTS = {"A": "Contamination", "B": "Small breakage", "C": "Large breakage", "D": "Damaged thread"}


@pytest.mark.parametrize(
    "reply, options, expected",
    [
        ("B", YES_NO, "B"),
        ("The answer is C.", DEFECTS, "C"),
        ("A. Yes.", YES_NO, "A"),
        ("b", YES_NO, "B"),
        ("(b)", YES_NO, "B"),
        ("the answer is d", DEFECTS, "D"),
        ("Answer: option c", DEFECTS, "C"),
        ("A or B? I pick B", YES_NO, "B"),  # several letters: the last one, as MMAD
        ("C, not D", DEFECTS, "D"),
        ("B\nA", YES_NO, "A"),
        ("Answer: E", YES_NO, None),  # a letter that is not offered is not an answer
        ("yes", YES_NO, "A"),  # no letter: option text
        ("I can see a large breakage on the rim", DEFECTS, "C"),
        ("small breakge", DEFECTS, "B"),  # fuzzy
        ("qqq zzz", DEFECTS, None),
        ("", YES_NO, None),
        ("   ", YES_NO, None),
        ("-K\ufffdcar\ufffdpswer", YES_NO, None),  # garbage from an untrained model
    ],
)
def test_parse_answer(reply, options, expected):
    assert parse_answer(reply, options) == expected


def test_options_as_pairs_and_the_cutoff():
    pairs = (("A", "Yes."), ("B", "No."))
    assert parse_answer("B.", pairs) == "B"
    assert parse_answer("maybe", pairs) is None
    assert parse_answer("maybe", pairs, fuzzy_cutoff=0.0) in ("A", "B")  # MMAD's cutoff 0 always picks one


def test_both_option_texts_in_the_reply_is_not_a_containment_match():
    assert match_option_text("yes or no", YES_NO) is None
