"""MMAD questions about a rendered sample, generated from its ground truth (category, variants, defect, mask).

Distractors are same-kind answers (other defect types, other regions, other colours), never the answer itself.
The answer's letter comes from `AnswerSlots`, a shuffle bag per question type, so letters are balanced.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from reason_iad.mmad import ANOMALY_QUESTION, OPTION_LETTERS, MMADQuestion
from reason_iad.synth.catalog import CATEGORIES, Category
from reason_iad.synth.render import KIND_CODES, SampleFacts
from reason_iad.synth.shapes import REGIONS

NUM_OPTIONS = 4
DEFECT_PREFIX = "There is a defect in the object. "
QUESTIONS = {
    "Object Classification": "What kind of object or material is shown in the image?",
    "Defect Classification": DEFECT_PREFIX + "What type of defect is it?",
    "Defect Localization": DEFECT_PREFIX + "Where is the defect located in the image?",
    "Defect Description": DEFECT_PREFIX + "What does the defect look like?",
    "Defect Analysis": DEFECT_PREFIX + "What is the most likely cause or consequence of this defect?",
}
STRUCTURE_QUESTIONS = {
    "texture": "What best describes the pattern of this surface?",
    "object": "What best describes the shape of the object?",
}
DETAIL_QUESTIONS = {
    "texture": "What colour and finish does the surface have?",
    "object": "What colour and finish does the object have?",
}


class AnswerSlots:
    """Where the answer goes among the options: a shuffle bag per (question type, option count).

    Every run of `count` questions of one type uses each letter exactly once, so letters stay balanced
    while the order within a run is random. The bag is seeded, so a fixed question order is reproducible.
    """

    def __init__(self, seed: int) -> None:
        """Create the bags for a dataset seed."""
        self._rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0x51075,)))
        self._bags: dict[tuple[str, int], list[int]] = {}

    def next(self, subtask: str, count: int) -> int:
        """The 0-based answer position of the next `subtask` question with `count` options."""
        bag = self._bags.setdefault((subtask, count), [])
        if not bag:
            bag.extend(int(i) for i in self._rng.permutation(count))
        return bag.pop()


def question_rng(seed: int, category: str, index: int, kind: str) -> np.random.Generator:
    """The generator for one image's distractor choices (separate from its rendering stream)."""
    key = (zlib.crc32(category.encode("utf-8")), KIND_CODES[kind], int(index), 1)
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=key))


def _distractors(rng: np.random.Generator, answer: str, pools: Sequence[Sequence[str]], count: int) -> list[str]:
    """Up to `count` distinct wrong options, taken from each pool in turn (each pool shuffled)."""
    chosen: list[str] = []
    for pool in pools:
        candidates = list(dict.fromkeys(p for p in pool if p != answer and p not in chosen))
        for i in rng.permutation(len(candidates)):
            if len(chosen) < count:
                chosen.append(candidates[int(i)])
    return chosen


def _question(subtask: str, text: str, answer: str, distractors: list[str], slots: AnswerSlots) -> MMADQuestion:
    """Place the answer at the next balanced slot among the distractors and build the question."""
    count = min(len(OPTION_LETTERS), len(distractors) + 1)
    slot = slots.next(subtask, count)
    options = list(distractors[: count - 1])
    options.insert(slot, answer)
    lettered = dict(zip(OPTION_LETTERS, options, strict=False))
    return MMADQuestion(Question=text, Options=lettered, Answer=OPTION_LETTERS[slot], type=subtask)


def _tiers(category: Category) -> list[list[Category]]:
    """The category itself, then the other categories of its kind, then those of the other kind."""
    others = [c for c in CATEGORIES.values() if c.name != category.name]
    return [[category], [c for c in others if c.kind == category.kind], [c for c in others if c.kind != category.kind]]


def _object_questions(facts: SampleFacts, rng: np.random.Generator, slots: AnswerSlots) -> list[MMADQuestion]:
    category = CATEGORIES[facts.category]
    tiers = _tiers(category)
    wanted = NUM_OPTIONS - 1
    structure = category.structure(facts.structure).text
    detail = category.detail(facts.detail).text
    structures = [[v.text for c in tier for v in c.structures] for tier in tiers]
    details = [[v.text for c in tier for v in c.details] for tier in tiers]
    titles = [c.title for c in CATEGORIES.values()]
    return [
        _question(
            "Object Classification",
            QUESTIONS["Object Classification"],
            category.title,
            _distractors(rng, category.title, [titles], wanted),
            slots,
        ),
        _question(
            "Object Structure",
            STRUCTURE_QUESTIONS[category.kind],
            structure,
            _distractors(rng, structure, structures, wanted),
            slots,
        ),
        _question(
            "Object Details",
            DETAIL_QUESTIONS[category.kind],
            detail,
            _distractors(rng, detail, details, wanted),
            slots,
        ),
    ]


def _defect_questions(facts: SampleFacts, rng: np.random.Generator, slots: AnswerSlots) -> list[MMADQuestion]:
    category = CATEGORIES[facts.category]
    defect = category.defect(str(facts.defect))
    wanted = NUM_OPTIONS - 1
    tiers = [
        [d for c in tier for d in c.defects if d.name != defect.name or c is not category] for tier in _tiers(category)
    ]
    region = str(facts.region).capitalize()
    description = str(facts.description)
    return [
        _question(
            "Defect Classification",
            QUESTIONS["Defect Classification"],
            defect.title,
            _distractors(rng, defect.title, [[d.title for d in tier] for tier in tiers], wanted),
            slots,
        ),
        _question(
            "Defect Localization",
            QUESTIONS["Defect Localization"],
            region,
            _distractors(rng, region, [[r.capitalize() for r in REGIONS]], wanted),
            slots,
        ),
        _question(
            "Defect Description",
            QUESTIONS["Defect Description"],
            description,
            _distractors(rng, description, [[d.description() for d in tier] for tier in tiers], wanted),
            slots,
        ),
        _question(
            "Defect Analysis",
            QUESTIONS["Defect Analysis"],
            defect.analysis,
            _distractors(rng, defect.analysis, [[d.analysis for d in tier] for tier in tiers], wanted),
            slots,
        ),
    ]


def build_conversation(facts: SampleFacts, rng: np.random.Generator, slots: AnswerSlots) -> list[MMADQuestion]:
    """All MMAD questions about one sample, in MMAD's subtask order.

    Args:
        facts: Ground truth of the rendered image (it decides every answer).
        rng: Generator for distractor choices (see `question_rng`).
        slots: The dataset's answer-slot bags (shared across all samples, used in a fixed order).

    Returns:
        Anomaly Detection, then (defective only) the four defect questions, then the three object questions.
    """
    yes_no = ["Yes.", "No."]
    answer = "No." if facts.is_normal else "Yes."
    anomaly = _question("Anomaly Detection", ANOMALY_QUESTION, answer, [o for o in yes_no if o != answer], slots)
    defect = [] if facts.is_normal else _defect_questions(facts, rng, slots)
    return [anomaly, *defect, *_object_questions(facts, rng, slots)]
