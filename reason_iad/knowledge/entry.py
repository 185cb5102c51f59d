"""A knowledge entry: what a defect (or the normal appearance) of a category looks like, validated.

The one model every write goes through (seed files, CLI, studio, imports), and the MMAD text convention
(a `<Title>` line, then `Description: text`) used by `domain_knowledge.json`. A text is stored exactly as given:
MMAD's own values (a space before the title and before each line, a trailing blank) are kept whole, title line
included, so an import exports and prompts byte for byte what MMAD's file holds.
"""

from __future__ import annotations

import re
import unicodedata

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from reason_iad.errors import UserError

MAX_TEXT_CHARS = 8000
NORMAL_KEY = "good"
_MMAD_TEXT = re.compile(r"^\s*<(?P<title>[^>\n]{1,200})>\s*\n\s*Description:\s*(?P<text>.*)$", re.DOTALL)


class KnowledgeEntry(BaseModel):
    """One knowledge entry; fields are checked (non-empty, no control characters, lengths) and, but `text`, stripped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200)
    dataset: str = Field(min_length=1, max_length=100)
    category: str = Field(min_length=1, max_length=100)
    defect: str = Field(min_length=1, max_length=100)
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    source: str = Field(default="project-written", max_length=200)
    author: str = Field(default="reason-iad", max_length=100)

    @field_validator("id", "dataset", "category", "defect", "title", "text", "source", "author")
    @classmethod
    def _printable(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            raise ValueError("must not be empty or whitespace")
        bad = [c for c in value if unicodedata.category(c) == "Cc" and c not in "\n\t"]
        if bad:
            raise ValueError(f"contains control characters {sorted({hex(ord(c)) for c in bad})}")
        return value if info.field_name == "text" else value.strip()

    @property
    def description(self) -> str:
        """The text without a title line of its own, stripped."""
        match = _MMAD_TEXT.match(self.text)
        return (match["text"] if match else self.text).strip()

    @property
    def mmad_text(self) -> str:
        """The entry as MMAD writes knowledge: `<Title>` line, then `Description: text`.

        A text that carries this entry's title line itself (as MMAD's values do) is returned exactly as stored.
        """
        match = _MMAD_TEXT.match(self.text)
        if match and match["title"].strip() == self.title:
            return self.text
        return f"<{self.title}>\nDescription: {self.description}"


def validation_message(err: ValidationError) -> str:
    """One line naming each bad field and why, e.g. `text: must not be empty or whitespace`."""
    parts = []
    for problem in err.errors():
        field = ".".join(str(p) for p in problem.get("loc", ())) or "entry"
        parts.append(f"{field}: {problem['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def make_entry(**fields) -> KnowledgeEntry:
    """A validated entry, or a one-line `UserError` naming the bad fields."""
    try:
        return KnowledgeEntry(**fields)
    except ValidationError as err:
        raise UserError(f"invalid knowledge entry: {validation_message(err)}") from err


def entry_id(dataset: str, category: str, defect: str) -> str:
    """The stable id of an entry: `dataset/category/defect`, lower case."""
    return f"{dataset}/{category}/{defect}".lower()


def split_mmad_text(key: str, value: str) -> tuple[str, str]:
    """(title, text) from an MMAD knowledge value; without the `<Title>` convention the key names the title.

    A value in this project's exact layout (`mmad_text` of a stripped text) gives that text; any other value with
    a title line, MMAD's own included, is kept whole and exactly, so `mmad_text` gives it back byte for byte.
    """
    match = _MMAD_TEXT.match(value)
    if not match:
        return key.replace("_", " ").strip().capitalize(), value.strip()
    title, text = match["title"].strip(), match["text"]
    if value == f"<{title}>\nDescription: {text}" and text == text.strip():
        return title, text
    return title, value


def to_domain_knowledge(entries: list[KnowledgeEntry]) -> dict[str, dict[str, dict[str, str]]]:
    """MMAD's structure {dataset: {category: {defect_or_good: text}}}, the title kept as MMAD's `<Title>` line."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for e in entries:
        out.setdefault(e.dataset, {}).setdefault(e.category, {})[e.defect] = e.mmad_text
    return out
