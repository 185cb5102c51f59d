"""Per-example variations of the knowledge a training prompt carries, so that reading the entries pays off.

`rename_defects` gives every defect type of a category a new title for one example (a made-up word, a code name
or another defect's title); `retitle` and `rename_question` apply it to the entries and the Defect Classification
options alike. `paraphrase_question` turns Defect Description options into the entries' own first sentences.
"""

from __future__ import annotations

import re

import numpy as np

from reason_iad.mmad import MMADQuestion
from reason_iad.synth.catalog import CATEGORIES

_SYLLABLES = ("ka", "lo", "vi", "rem", "tor", "zu", "ne", "pax", "qui", "dor", "sel", "mo", "fen", "gra", "ul", "bi")
_NOUNS = ("mark", "flaw", "fault", "defect", "spot", "trace", "blemish", "anomaly")
CODE_NAME_SHARE = 2 / 7  # of the renamings that do not permute: code names, the rest made-up words
_TITLE_LINE = re.compile(r"^(\s*)<[^>\n]*>")


def _made_up(rng: np.random.Generator) -> str:
    word = "".join(_SYLLABLES[int(i)] for i in rng.integers(len(_SYLLABLES), size=int(rng.integers(2, 4))))
    return word.capitalize() + (f" {_NOUNS[int(rng.integers(len(_NOUNS)))]}" if rng.random() < 0.5 else "")


def _code_name(rng: np.random.Generator) -> str:
    stem = ("Type", "Defect", "Class", "Anomaly", "Fault")[int(rng.integers(5))]
    return f"{stem} {chr(65 + int(rng.integers(26)))}{int(rng.integers(1, 10))}"


def rename_defects(category: str, rng: np.random.Generator, permute_share: float) -> dict[str, str]:
    """New titles for every defect type of `category`, for one example: distinct, none equal to its own title.

    One of three schemes per call: a permutation of the category's own titles in which no defect keeps its title
    (the memorised title is then wrong), at `permute_share`; otherwise code names ("Type K4") or made-up words
    ("Remtor flaw"), in a 2 : 5 ratio (`CODE_NAME_SHARE`). `DataRecipe.permute_share` holds the default.
    """
    defects = CATEGORIES[category].defects
    real = {d.title.lower() for c in CATEGORIES.values() for d in c.defects}
    scheme = rng.random()
    if scheme < permute_share and len(defects) > 1:
        shift = 1 + int(rng.integers(len(defects) - 1))  # a cyclic shift of a random order: no fixed point
        order = [int(i) for i in rng.permutation(len(defects))]
        return {defects[order[i]].name: defects[order[(i + shift) % len(defects)]].title for i in range(len(order))}
    make = _code_name if scheme < permute_share + (1 - permute_share) * CODE_NAME_SHARE else _made_up
    names: dict[str, str] = {}
    while len(names) < len(defects):
        name = make(rng)
        if name.lower() not in real and name not in names.values():
            names[defects[len(names)].name] = name
    return names


def retitle(text: str, title: str) -> str:
    """An MMAD knowledge text (`<Title>` line, then `Description: ...`) with its title line renamed."""
    return _TITLE_LINE.sub(lambda m: f"{m.group(1)}<{title}>", text, count=1)


def first_sentence(text: str) -> str:
    """The first sentence of an MMAD knowledge text's description (its most visual one)."""
    body = text.split("Description:", 1)[-1].strip()
    return re.split(r"(?<=[.!?])\s+", body, maxsplit=1)[0].strip()


def _look_owners() -> dict[str, tuple[str, str]]:
    """Every Defect Description option phrase of the catalog -> (category, defect) it describes."""
    return {text: (c.name, d.name) for c in CATEGORIES.values() for d in c.defects for _, text in d.looks}


def rename_question(question: MMADQuestion, category: str, titles: dict[str, str], rng) -> MMADQuestion:
    """A Defect Classification question with the category's titles renamed as in the entries.

    Other categories' titles (distractors) stay unless they collide with a new name; then they become made-up.
    """
    if question.type != "Defect Classification":
        return question
    own = {d.title: titles[d.name] for d in CATEGORIES[category].defects}
    taken = set(titles.values())
    options = {}
    for letter, text in question.options.items():
        new = own.get(text, text)
        while text not in own and new in taken:
            new = _made_up(rng)
        taken.add(new)
        options[letter] = new
    return question.model_copy(update={"options": options})


def paraphrase_question(question: MMADQuestion, knowledge: dict[str, list[tuple[str, str]]]) -> MMADQuestion:
    """A Defect Description question whose options are the first sentences of the described defects' entries."""
    if question.type != "Defect Description":
        return question
    owners, texts = _look_owners(), {c: dict(pairs) for c, pairs in knowledge.items()}
    options = {}
    for letter, text in question.options.items():
        category, defect = owners.get(text, ("", ""))
        entry = texts.get(category, {}).get(defect)
        options[letter] = first_sentence(entry)[:300] if entry else text
    if len(set(options.values())) != len(options):
        return question
    return question.model_copy(update={"options": options})
