"""The committed example gallery (`examples/`): per category one normal and two defective SynthIAD images.

`write_gallery(out_dir, seed=2026)` writes `<category>/<name>.png` (+ `_mask.png`), `index.json` with MMAD
questions per image (used as suggestions in the studio) and a README stating provenance and licence.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from reason_iad.mmad import SUBTASKS
from reason_iad.synth.catalog import CATEGORIES, DATASET, NORMAL
from reason_iad.synth.output import check_output_dir, staged_folder
from reason_iad.synth.questions import AnswerSlots, build_conversation, question_rng
from reason_iad.synth.render import RenderedSample, render_sample, sample_rng
from reason_iad.synth.writer import SynthSummary, check_generation_args, encode_png, resolve_categories

GALLERY_SEED = 2026
GALLERY_IMAGE_SIZE = 256
DEFECTS_PER_CATEGORY = 2

README = """# Example gallery

Small example images for the Reason-IAD studio: for each SynthIAD category one normal image and two
defective ones, each defect with its binary ground-truth mask (`*_mask.png`, 255 = defect).
`index.json` lists every image with its category, defect type (`good` for normal), mask and MMAD-style
questions generated from the ground truth.

## Provenance

Generated procedurally by this project's own code (`reason_iad/synth/`), with no photographs of real
products:

    reason-iad synth --gallery --out examples --force --seed {seed} --image-size {size}

The same command and seed reproduce these files byte for byte. The tile category's grain is a cropped,
rotated and tinted piece of scikit-image's `gravel` sample texture (`skimage.data.gravel()`, originally
"Gravel04" from CC0Textures, released under CC0 1.0 and shipped inside the scikit-image wheel); every
other pixel is computed from noise and geometry.

## Licence

The images, masks and `index.json` are the project's own work, dedicated to the public domain under
CC0 1.0 (https://creativecommons.org/publicdomain/zero/1.0/), like the scikit-image textures they use.
"""


def _gallery_entry(out: Path, sample: RenderedSample, name: str, slots: AnswerSlots, index: int, seed: int) -> dict:
    """Write one sample's files under `out/<category>/` and return its index entry."""
    folder = out / sample.category
    folder.mkdir(parents=True, exist_ok=True)
    image = f"{sample.category}/{name}.png"
    (out / image).write_bytes(encode_png(sample.image))
    mask = None
    if not sample.is_normal:
        mask = f"{sample.category}/{name}_mask.png"
        (out / mask).write_bytes(encode_png(sample.mask))
    rng = question_rng(seed, sample.category, index, "gallery")
    questions = [q.to_json() for q in build_conversation(sample.facts, rng, slots)]
    return {
        "image": image,
        "category": sample.category,
        "dataset": DATASET,
        "defect": sample.defect or NORMAL,
        "mask": mask,
        "questions": questions,
    }


def write_gallery(
    out_dir: Path,
    *,
    seed: int = GALLERY_SEED,
    image_size: int = GALLERY_IMAGE_SIZE,
    categories: Sequence[str] | None = None,
    force: bool = False,
) -> SynthSummary:
    """Write the example gallery: per category one normal image and two of different defect types.

    Args:
        out_dir: Gallery folder (must be absent or empty unless `force`; replaced only after success).
        seed: Seed of the renders and of the defect-type choice.
        image_size: Square image side in pixels.
        categories: Category names (default: all eight).
        force: Replace an existing gallery (one that holds an `index.json`).

    Returns:
        A `SynthSummary` (no templates; `num_images` counts gallery images).
    """
    started = time.perf_counter()
    check_generation_args(seed, 1, image_size)
    names = resolve_categories(categories)
    target = check_output_dir(Path(out_dir), force=force, markers=("index.json",))
    slots, entries = AnswerSlots(seed), []
    with staged_folder(target) as staging:
        for category in names:
            chooser = sample_rng(seed, category, 0, "gallery")
            defects = [str(d) for d in chooser.choice(CATEGORIES[category].defect_names, DEFECTS_PER_CATEGORY, False)]
            for index, defect in enumerate([None, *defects]):
                sample = render_sample(category, defect, sample_rng(seed, category, index + 1, "gallery"), image_size)
                entries.append(_gallery_entry(staging, sample, defect or NORMAL, slots, index, seed))
        (staging / "index.json").write_text(json.dumps(entries, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        (staging / "README.md").write_text(README.format(seed=seed, size=image_size), encoding="utf-8")
    counts = Counter(q["type"] for e in entries for q in e["questions"])
    return SynthSummary(
        out_dir=target,
        num_images=len(entries),
        num_templates=0,
        num_masks=sum(e["mask"] is not None for e in entries),
        num_questions=sum(counts.values()),
        questions_per_subtask={s: counts[s] for s in SUBTASKS if counts[s]},
        seconds=time.perf_counter() - started,
    )
