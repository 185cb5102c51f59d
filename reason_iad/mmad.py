"""The MMAD benchmark file format, shared by the synthetic generator, the evaluation reader and exports.

`mmad.json` maps a relative query-image path (`<dataset>/<category>/...`) to an `MMADRecord`;
`domain_knowledge.json` maps dataset -> category -> key (defect type or `good`) -> text.
Validate a whole file with `load_mmad(path)`; write one with `dump_mmad(records, path)`.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator, model_validator

SUBTASKS: tuple[str, ...] = (
    "Anomaly Detection",
    "Defect Classification",
    "Defect Localization",
    "Defect Description",
    "Defect Analysis",
    "Object Classification",
    "Object Structure",
    "Object Details",
)
"""The `type` tags found in MMAD files (Object Structure/Details are scored together as Object Analysis)."""

Subtask = Literal[
    "Anomaly Detection",
    "Defect Classification",
    "Defect Localization",
    "Defect Description",
    "Defect Analysis",
    "Object Classification",
    "Object Structure",
    "Object Details",
]

OPTION_LETTERS = tuple(string.ascii_uppercase[:5])  # MMAD uses A..E

REGIONS: tuple[str, ...] = (
    "top left",
    "top",
    "top right",
    "left",
    "center",
    "right",
    "bottom left",
    "bottom",
    "bottom right",
)
"""Where a defect is, on a 3x3 grid row by row: the Defect Localization options and the memory's evidence line."""

MMAD_INSTRUCTION = (
    "You are an industrial inspector who checks products by images. You should judge whether there is "
    "a defect in the query image and answer the questions about it. Answer with the option's letter "
    "from the given choices directly."
)
ANOMALY_QUESTION = "Is there any defect in the object?"


class MMADQuestion(BaseModel):
    """One multiple-choice question about an image."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    question: str = Field(alias="Question", min_length=1)
    options: dict[str, str] = Field(alias="Options")
    answer: str = Field(alias="Answer")
    type: Subtask

    @field_validator("options")
    @classmethod
    def _letters_in_order(cls, options: dict[str, str]) -> dict[str, str]:
        letters = tuple(options)
        if not 2 <= len(letters) <= len(OPTION_LETTERS) or letters != OPTION_LETTERS[: len(letters)]:
            raise ValueError(f"options must be lettered A, B, ... in order, got {list(letters)}")
        if any(not text.strip() for text in options.values()):
            raise ValueError("option texts must not be empty")
        if len(set(options.values())) != len(options):
            raise ValueError("option texts must be distinct")
        return options

    @model_validator(mode="after")
    def _answer_is_an_option(self) -> MMADQuestion:
        if self.answer not in self.options:
            raise ValueError(f"answer {self.answer!r} is not one of the options {list(self.options)}")
        return self

    def to_json(self) -> dict:
        """The MMAD spelling of this question (capitalised keys)."""
        return {"Question": self.question, "Options": dict(self.options), "Answer": self.answer, "type": self.type}


class MMADRecord(BaseModel):
    """All questions about one query image plus its one-shot templates and mask."""

    model_config = ConfigDict(extra="ignore")

    conversation: list[MMADQuestion] = Field(min_length=1)
    similar_templates: list[str] = Field(default_factory=list)
    random_templates: list[str] = Field(default_factory=list)
    mask_path: str = ""

    def to_json(self) -> dict:
        """The MMAD spelling of this record."""
        return {
            "conversation": [q.to_json() for q in self.conversation],
            "similar_templates": list(self.similar_templates),
            "random_templates": list(self.random_templates),
            "mask_path": self.mask_path,
        }


class MMADFile(RootModel[dict[str, MMADRecord]]):
    """A whole `mmad.json`: relative image path -> record."""


class DomainKnowledge(RootModel[dict[str, dict[str, dict[str, str]]]]):
    """A `domain_knowledge.json`: dataset -> category -> defect key (or `good`) -> text."""


def image_dataset_and_category(image_path: str) -> tuple[str, str]:
    """Split an MMAD key such as `MVTec-AD/bottle/test/good/000.png` into (dataset, category)."""
    parts = Path(image_path).parts
    if len(parts) < 3:
        raise ValueError(f"MMAD image key {image_path!r} needs at least <dataset>/<category>/<file>")
    return parts[0], parts[1]


def is_normal_image(image_path: str) -> bool:
    """MMAD's convention: a query image is normal when `good` is one of its path components."""
    return "good" in Path(image_path).parts


def load_mmad(path: str | Path) -> dict[str, MMADRecord]:
    """Read and validate an `mmad.json` file (raises `pydantic.ValidationError` naming the bad entry)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return MMADFile.model_validate(data).root


def dump_mmad(records: dict[str, MMADRecord], path: str | Path) -> None:
    """Write records as an `mmad.json` (keys sorted, UTF-8, indented)."""
    payload = {key: records[key].to_json() for key in sorted(records)}
    Path(path).write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
