"""The answer letter of a generated reply, as MMAD reads it, or None when the reply names no option.

MMAD takes the last standalone capital A-E (regex `([A-E])` between word boundaries) and, when there is none,
the option whose text is closest to the reply (`difflib.get_close_matches`, cutoff 0, so it always picks
something). We keep the first rule (restricted to the offered letters), accept a lone lower-case letter (`"b"`)
and `answer is b`, and make the fuzzy fallback strict enough that a reply unrelated to every option is reported
as unparseable.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

STANDALONE_LETTER = re.compile(r"\b([A-E])\b")
LONE_LETTER = re.compile(r"^\W*([A-Ea-e])\W*$")
ANSWER_IS = re.compile(r"\banswer\b\W*(?:is\b\W*)?(?:option\b\W*)?\(?([A-Ea-e])\b", re.IGNORECASE)
FUZZY_CUTOFF = 0.6  # difflib ratio; MMAD uses 0 (any reply matches some option)


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
