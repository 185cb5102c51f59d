"""The answer letter of a generated reply: by MMAD's rules (`mmad`) or by ours (`strict`, None when unparseable).

MMAD (evaluation/examples/GPT4/gpt4v.py `parse_answer`, whose last element the query scripts take) reads the last
standalone capital A-E of the raw reply (regex `([A-E])` between word boundaries), offered or not, and, when there
is none, the option whose text is closest to the whole reply (`difflib.get_close_matches(reply, texts, n=1,
cutoff=0.0)`), so it always picks a letter: under MMAD's parser no reply is unparseable (`parse_answer_mmad`).
`parse_answer` (strict) keeps the first rule restricted to the offered letters, accepts a lone lower-case letter
(`"b"`) and `answer is b`, and makes the fuzzy fallback strict enough that a reply unrelated to every option is
reported as unparseable (None).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from reason_iad.errors import UserError

if TYPE_CHECKING:
    from reason_iad.eval.answers import AnswerRecord

STANDALONE_LETTER = re.compile(r"\b([A-E])\b")
LONE_LETTER = re.compile(r"^\W*([A-Ea-e])\W*$")
ANSWER_IS = re.compile(r"\banswer\b\W*(?:is\b\W*)?(?:option\b\W*)?\(?([A-Ea-e])\b", re.IGNORECASE)
FUZZY_CUTOFF = 0.6  # difflib ratio; MMAD uses 0 (any reply matches some option)
PARSERS: tuple[str, ...] = ("strict", "mmad")
Options = Mapping[str, str] | Iterable[tuple[str, str]]  # letter -> option text, or (letter, text) pairs


def parse_answer(
    reply: str, options: Mapping[str, str] | Iterable[tuple[str, str]], fuzzy_cutoff: float = FUZZY_CUTOFF
) -> str | None:
    """The option letter a reply gives, or None when it cannot be told.

    Args:
        reply: The generated text.
        options: Letter -> option text (a mapping or `(letter, text)` pairs).
        fuzzy_cutoff: Minimum `difflib` similarity for the option-text fallback.

    Returns:
        The last standalone offered capital letter; else a lone letter of either case or `answer is x`;
        else the option whose text the reply contains or is closest to; else None.
    """
    offered = dict(options.items() if isinstance(options, Mapping) else options)
    letters = [letter for letter in STANDALONE_LETTER.findall(reply) if letter in offered]
    if letters:
        return letters[-1]
    for pattern in (LONE_LETTER, ANSWER_IS):
        found = [m.upper() for m in pattern.findall(reply) if m.upper() in offered]
        if found:
            return found[-1]
    return match_option_text(reply, offered, fuzzy_cutoff)


def parse_answer_mmad(reply: str, options: Options) -> str | None:
    """The letter MMAD's scripts read from a reply: the last standalone A-E, else the closest option text.

    None only when the reply has no letter and no option is offered.
    """
    offered = dict(options.items() if isinstance(options, Mapping) else options)
    letters = STANDALONE_LETTER.findall(reply)
    if letters:
        return letters[-1]
    closest = difflib.get_close_matches(reply, list(offered.values()), n=1, cutoff=0.0)
    return next((letter for letter, text in offered.items() if closest and text == closest[0]), None)


def parse_reply(reply: str, options: Options, parser: str = "strict") -> str | None:
    """The reply's letter by the named parser: `strict` (`parse_answer`) or `mmad` (`parse_answer_mmad`)."""
    if parser == "mmad":
        return parse_answer_mmad(reply, options)
    if parser == "strict":
        return parse_answer(reply, options)
    raise UserError(f"unknown reply parser {parser!r}: use {' or '.join(PARSERS)}")


def reparsed(records: Sequence[AnswerRecord], parser: str) -> tuple[AnswerRecord, ...]:
    """The records with `parsed_answer` read again from each stored reply by `parser` (`strict`: as recorded)."""
    if parser not in PARSERS:
        raise UserError(f"unknown reply parser {parser!r}: use {' or '.join(PARSERS)}")
    if parser == "strict":
        return tuple(records)
    return tuple(dataclasses.replace(r, parsed_answer=parse_reply(r.reply, r.options, parser)) for r in records)


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def match_option_text(reply: str, options: Mapping[str, str], cutoff: float = FUZZY_CUTOFF) -> str | None:
    """The letter of the option whose text the reply contains (only one) or resembles (difflib), else None."""
    said = _words(reply)
    if not said:
        return None
    texts = {letter: _words(text) for letter, text in options.items()}
    contained = [letter for letter, text in texts.items() if text and f" {text} " in f" {said} "]
    if len(contained) == 1:
        return contained[0]
    close = difflib.get_close_matches(said, list(texts.values()), n=1, cutoff=cutoff)
    if not close:
        return None
    return next(letter for letter, text in texts.items() if text == close[0])
