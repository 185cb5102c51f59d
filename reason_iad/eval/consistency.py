"""Does the explanation agree with the answer? A check of each rationale's verdict and defect type.

`rationale_agrees(record)` reads an answered question's rationale (recorded by a run decoded with
`--rationale continue` or `followup`) against the read-out answer:

* **verdict**: a rationale that calls the object normal ("looks normal", "no defect") agrees with a "No" to
  Anomaly Detection and contradicts a "Yes", and contradicts every question that presupposes a defect (Defect
  Classification, Localization, Description, Analysis); one that names a defect contradicts a "No";
* **defect type / place** (Defect Classification, Defect Localization): a rationale that names one of the other
  options and not the chosen one contradicts the answer.

It returns None when the rationale is empty or says nothing either check can read (an object question, a
sentence without a verdict or an option), so the share is taken over the rationales that commit to something.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

NORMAL = re.compile(r"\b(looks? normal|no (visible )?defects?|is normal|nothing (unusual|wrong)|intact|flawless)\b")
DEFECT_QUESTIONS = ("Defect Classification", "Defect Localization", "Defect Description", "Defect Analysis")
NAMED_QUESTIONS = ("Defect Classification", "Defect Localization")  # options that a sentence names


def _mentions(text: str, phrase: str) -> bool:
    words = phrase.lower().strip().rstrip(".")
    return bool(words) and re.search(rf"\b{re.escape(words)}\b", text) is not None


def rationale_agrees(record) -> bool | None:
    """Whether the record's rationale agrees with its read-out answer (None: nothing to check; see the module)."""
    text = (record.rationale or "").lower().strip()
    chosen = record.options.get(record.readout_answer or "", "")
    if not text or not chosen:
        return None
    says_normal = NORMAL.search(text) is not None
    verdict: bool | None = None
    if record.subtask == "Anomaly Detection":
        answered_defect = chosen.lower().startswith("yes")
        names_defect = any(_mentions(text, w) for w in ("defect", "damage", "flaw")) and not says_normal
        if says_normal or names_defect:
            verdict = says_normal != answered_defect
    elif record.subtask in DEFECT_QUESTIONS and says_normal:
        verdict = False
    named: bool | None = None
    if record.subtask in NAMED_QUESTIONS:
        mentioned = [t.lower().strip().rstrip(".") for t in record.options.values() if _mentions(text, t)]
        longest = [t for t in mentioned if not any(t != u and t in u for u in mentioned)]  # "right" in "top right"
        if longest:
            named = chosen.lower().strip().rstrip(".") in longest
    checks = [c for c in (verdict, named) if c is not None]
    return all(checks) if checks else None


def agreement(records: Iterable) -> tuple[int, int]:
    """(rationales that agree, rationales that commit to something) over `records`."""
    results = [r for r in (rationale_agrees(record) for record in records) if r is not None]
    return sum(results), len(results)
