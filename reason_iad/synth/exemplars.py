"""The normal exemplars a new database starts with: the gallery's normal images and rendered SynthIAD normals.

`ExemplarStore(uri, seed=seed_exemplars)` writes them in the table's first commit, so every SynthIAD category has
one-shot templates and a visual-memory bank (built on its first inspection) from the first start. The renders use
a seed kept apart from training and evaluation data.
"""

from __future__ import annotations

import json
from pathlib import Path

from reason_iad.images import load_image
from reason_iad.memory.exemplars import NewExemplar
from reason_iad.paths import EXAMPLES_DIR
from reason_iad.synth.catalog import CATEGORIES, DATASET
from reason_iad.synth.render import render_sample

RENDERS_PER_CATEGORY = 8
RENDER_SEED = 7
RENDER_SIDE = 256


def gallery_exemplars(examples_dir: Path = EXAMPLES_DIR) -> list[NewExemplar]:
    """The gallery's normal images (`index.json` rows labelled good); none without an index."""
    index = examples_dir / "index.json"
    if not index.is_file():
        return []
    normals = [row for row in json.loads(index.read_text(encoding="utf-8")) if row["defect"] == "good"]
    return [
        NewExemplar(
            load_image(examples_dir / row["image"], "exemplar"),
            row["dataset"],
            row["category"],
            f"gallery {row['image']}",
            "seed",
            "example gallery",
        )
        for row in normals
    ]


def rendered_exemplars(per_category: int = RENDERS_PER_CATEGORY) -> list[NewExemplar]:
    """`per_category` rendered normal images of every SynthIAD category (about 1.5 s for 64 on a 2-core CPU)."""
    return [
        NewExemplar(
            render_sample(name, None, RENDER_SEED * 1000 + i, RENDER_SIDE).image,
            DATASET,
            name,
            f"normal {i}",
            "seed",
            "rendered SynthIAD normal",
        )
        for name in CATEGORIES
        for i in range(per_category)
    ]


def seed_exemplars() -> list[NewExemplar]:
    """What a studio's new database starts with: the gallery's normals, then the rendered ones."""
    return [*gallery_exemplars(), *rendered_exemplars()]
