"""The example gallery as the studio shows it: the committed `examples/index.json` -> typed items -> renderings.

Pure functions (no Gradio objects), tested without a browser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from reason_iad.mmad import MMADQuestion


@dataclass(frozen=True)
class GalleryItem:
    """One committed example image with its ground truth and suggested questions."""

    image: Path
    dataset: str
    category: str
    defect: str  # "good" for normal images
    mask: Path | None
    questions: tuple[MMADQuestion, ...]

    @property
    def caption(self) -> str:
        """Short label shown under the thumbnail, e.g. `bottle · contamination`."""
        return f"{self.category} · {self.defect.replace('_', ' ')}"


def load_gallery(examples_dir: Path) -> list[GalleryItem]:
    """Read `examples/index.json`; a missing index gives an empty gallery (the studio still starts)."""
    index = examples_dir / "index.json"
    if not index.is_file():
        return []
    items = []
    for row in json.loads(index.read_text(encoding="utf-8")):
        items.append(
            GalleryItem(
                image=examples_dir / row["image"],
                dataset=row["dataset"],
                category=row["category"],
                defect=row["defect"],
                mask=examples_dir / row["mask"] if row.get("mask") else None,
                questions=tuple(MMADQuestion.model_validate(q) for q in row.get("questions", [])),
            )
        )
    return items


def mask_annotations(item: GalleryItem) -> list[tuple[np.ndarray, str]]:
    """The ground-truth mask as (float mask in [0, 1], label) pairs for `gr.AnnotatedImage`; none for normal images."""
    if item.mask is None:
        return []
    mask = np.asarray(Image.open(item.mask).convert("L"), dtype=np.float32) / 255.0  # [H, W]
    return [(mask, item.defect.replace("_", " "))]


def questions_markdown(item: GalleryItem) -> str:
    """The suggested MMAD questions with options, the correct answer in bold."""
    if not item.questions:
        return "_No suggested questions for this example._"
    lines = [f"**{item.caption}** ({item.dataset})", ""]
    for number, q in enumerate(item.questions, start=1):
        lines.append(f"{number}. *{q.type}* — {q.question}")
        for letter, text in q.options.items():
            shown = f"**{letter}. {text}** ✓" if letter == q.answer else f"{letter}. {text}"
            lines.append(f"    - {shown}")
    return "\n".join(lines)
