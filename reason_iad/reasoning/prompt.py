"""MMAD-style prompts: instruction, retrieved knowledge, optional normal template, query image, question, options.

The latent think-token slots are not part of the messages: they form the suffix the engine optimises, placed
after the question at the end of the user turn (DESIGN §2.2).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from reason_iad.backends.base import Message
from reason_iad.errors import UserError
from reason_iad.mmad import ANOMALY_QUESTION, MMAD_INSTRUCTION

_OPTION_MARK = re.compile(r"^([A-Za-z])\s*[.):=]\s*(.+)$", re.DOTALL)

KNOWLEDGE_HEADER = (
    "Following is the domain knowledge which contains some type of defect and the normal object characteristics:"
)
TEMPLATE_HEADER = (
    "Following is 1 image of normal sample, which can be used as a template to compare the image being queried."
)
QUERY_HEADER = "Following is the query image:"
EVIDENCE_HEADER = "Visual memory evidence:"
MAX_QUESTION_CHARS = 2000
MAX_OPTION_CHARS = 300


@dataclass(frozen=True)
class Question:
    """A multiple-choice question: text and options lettered A, B, ... in order."""

    text: str
    options: tuple[tuple[str, str], ...]  # (letter, option text)

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise UserError("the question is empty")
        if len(self.text) > MAX_QUESTION_CHARS:
            raise UserError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
        letters = [letter for letter, _ in self.options]
        if len(letters) < 2:
            raise UserError("a question needs at least two options")
        if len(set(letters)) != len(letters):
            raise UserError(f"duplicate option letters: {letters}")
        if letters != list(string.ascii_uppercase[: len(letters)]):
            raise UserError(f"options must be lettered A, B, C, ... in order, got {letters}")
        for letter, text in self.options:
            if not text.strip():
                raise UserError(f"option {letter} is empty")
            if len(text) > MAX_OPTION_CHARS:
                raise UserError(f"option {letter} is longer than {MAX_OPTION_CHARS} characters")

    @classmethod
    def anomaly(cls) -> Question:
        """MMAD's anomaly-detection question: "Is there any defect in the object?" Yes/No."""
        return cls(ANOMALY_QUESTION, (("A", "Yes."), ("B", "No.")))

    @classmethod
    def parse(cls, text: str | None, options: Sequence[str] = ()) -> Question:
        """A question typed by a person: the text and one line per option, MMAD's anomaly question when empty.

        An option line may start with its letter (`A. text`, `A) text`, `A: text`, `A=text`); a line without one
        takes the next letter in order. The CLI (`--question`, `--option`) and the studio both parse with this.
        """
        lines = [line.strip() for line in options if line and line.strip()]
        if not (text or "").strip():
            if lines:
                raise UserError("options were given without a question: type the question too")
            return cls.anomaly()
        if len(lines) > len(string.ascii_uppercase):
            raise UserError(f"{len(lines)} options: a question takes at most {len(string.ascii_uppercase)}")
        pairs = []
        for index, line in enumerate(lines):
            marked = _OPTION_MARK.match(line)
            pairs.append(
                (marked.group(1).upper(), marked.group(2)) if marked else (string.ascii_uppercase[index], line)
            )
        return cls(text.strip(), tuple(pairs))

    @property
    def letters(self) -> tuple[str, ...]:
        """The option letters in order."""
        return tuple(letter for letter, _ in self.options)

    def render(self) -> str:
        """The question as MMAD writes it: the question line, then one `X. text` line per option."""
        return "\n".join([f"Question: {self.text.strip()}", *(f"{k}. {v.strip()}" for k, v in self.options)])


def build_messages(
    question: Question,
    query: Image.Image,
    template: Image.Image | None = None,
    knowledge: Sequence[str] = (),
    instruction: str = MMAD_INSTRUCTION,
    evidence: str = "",
) -> list[Message]:
    """One user turn in MMAD's order: instruction, knowledge, (template), query image, (evidence), question.

    `evidence` is the visual memory's text line (e.g. "most anomalous region: top left, score 0.91"), placed
    right after the query image; empty: no evidence line.
    """
    parts: list[str | Image.Image] = [instruction]
    if knowledge:
        parts.append("\n" + KNOWLEDGE_HEADER + "\n" + "\n".join(knowledge))  # the texts exactly, as MMAD joins them
    if template is not None:
        parts += ["\n" + TEMPLATE_HEADER + "\n", template]
    parts += ["\n" + QUERY_HEADER + "\n", query]
    if evidence.strip():
        parts.append(f"\n{EVIDENCE_HEADER} {evidence.strip()}")
    parts.append("\nFollowing is the question list:\n" + question.render())
    return [Message("user", tuple(parts))]
