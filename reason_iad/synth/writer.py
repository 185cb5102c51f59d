"""Write a SynthIAD dataset in MMAD layout: images, masks, `mmad.json` and `domain_knowledge.json`.

`generate_dataset(out_dir, seed=0, per_category=20)` renders K normal and K defective test images per
category plus a few normal templates, builds the questions from ground truth, and moves the finished folder
into place in one rename (see `output.staged_folder`), so a failure never leaves half a dataset behind.
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

from reason_iad.errors import UserError
from reason_iad.knowledge.entry import to_domain_knowledge
from reason_iad.knowledge.seed import load_seed_file
from reason_iad.mmad import SUBTASKS, MMADRecord, dump_mmad
from reason_iad.paths import SEED_KNOWLEDGE_DIR
from reason_iad.synth.catalog import CATEGORIES, DATASET, NORMAL
from reason_iad.synth.output import check_output_dir, staged_folder
from reason_iad.synth.questions import AnswerSlots, build_conversation, question_rng
from reason_iad.synth.render import SampleFacts, render_sample, sample_rng

MAX_PER_CATEGORY = 10000
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 64, 1024
KNOWLEDGE_FILE = SEED_KNOWLEDGE_DIR / "synth-iad.jsonl"
PARALLEL_MIN_JOBS = 48  # below this a process pool costs more than it saves
THUMBNAIL = 16


@dataclass(frozen=True)
class SynthSummary:
    """What `generate_dataset` wrote.

    Attributes:
        out_dir: The dataset folder (holds `mmad.json`, `domain_knowledge.json` and `SynthIAD/`).
        num_images: Query (test) images, normal and defective.
        num_templates: Normal template images under `train/good`.
        num_masks: Mask images (one per defective image).
        num_questions: Questions over all records.
        questions_per_subtask: Question count per MMAD subtask tag.
        seconds: Wall-clock time of the whole run.
    """

    out_dir: Path
    num_images: int
    num_templates: int
    num_masks: int
    num_questions: int
    questions_per_subtask: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class ImageJob:
    """One image to render and write (picklable, so it can go to a worker process)."""

    seed: int
    category: str
    kind: str
    index: int
    defect: str | None
    image_size: int
    image_path: str
    mask_path: str


@dataclass(frozen=True)
class ImageResult:
    """What the record builder needs from a rendered image."""

    job: ImageJob
    facts: SampleFacts
    thumbnail: np.ndarray


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes without metadata (no text chunks, no timestamps), so equal pixels give equal files."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def _numbered(count: int) -> Callable[[int], str]:
    width = max(3, len(str(max(count - 1, 0))))
    return lambda i: f"{i:0{width}d}"


def plan_jobs(
    seed: int, per_category: int, image_size: int, categories: Sequence[str], templates: int = 0
) -> list[ImageJob]:
    """Every image of the dataset, templates first, in a fixed order.

    Args:
        seed: Dataset seed.
        per_category: K: normal and defective test images per category (K of each).
        image_size: Image side in pixels.
        categories: Category names.
        templates: Normal templates per category (0: max(3, per_category // 4)).

    Returns:
        The jobs; defect types cycle through the category's catalog order.
    """
    templates = templates or max(3, per_category // 4)
    jobs = []
    for category in categories:
        root = f"{DATASET}/{category}"
        name = _numbered(max(templates, per_category))
        for i in range(templates):
            jobs.append(
                ImageJob(seed, category, "template", i, None, image_size, f"{root}/train/good/{name(i)}.png", "")
            )
        for i in range(per_category):
            jobs.append(
                ImageJob(seed, category, "normal", i, None, image_size, f"{root}/test/{NORMAL}/{name(i)}.png", "")
            )
        defects = CATEGORIES[category].defect_names
        for j in range(per_category):
            defect, number = defects[j % len(defects)], name(j // len(defects))
            image = f"{root}/test/{defect}/{number}.png"
            mask = f"{root}/ground_truth/{defect}/{number}_mask.png"
            jobs.append(ImageJob(seed, category, "defect", j, defect, image_size, image, mask))
    return jobs


def run_job(job: ImageJob, root: Path) -> ImageResult:
    """Render one job and write its image (and mask) under `root`."""
    sample = render_sample(
        job.category, job.defect, sample_rng(job.seed, job.category, job.index, job.kind), job.image_size
    )
    outputs = [(job.image_path, sample.image)] + ([(job.mask_path, sample.mask)] if job.mask_path else [])
    for relative, image in outputs:
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(encode_png(image))
    small = sample.image.resize((THUMBNAIL, THUMBNAIL), resample=Image.Resampling.BOX)
    return ImageResult(job, sample.facts, np.asarray(small, dtype=np.float32) / 255.0)


def _run_jobs_slice(jobs: list[ImageJob], root: Path) -> list[ImageResult]:
    return [run_job(job, root) for job in jobs]


def render_all(
    jobs: list[ImageJob], root: Path, progress: Callable[[int, int], None] | None, workers: int = 1
) -> list[ImageResult]:
    """Render every job, in `workers` spawned processes when there are many; results keep the job order.

    Worker processes re-import the caller's `__main__` module (spawn), so only entry points guarded by
    `if __name__ == "__main__"` (the `reason-iad` CLI) should ask for more than one worker.
    """
    total = len(jobs)
    if progress:
        progress(0, total)
    if total < PARALLEL_MIN_JOBS or workers < 2:
        results = []
        for job in jobs:
            results.append(run_job(job, root))
            if progress:
                progress(len(results), total)
        return results
    chunk = max(4, total // (10 * workers))
    slices = [jobs[i : i + chunk] for i in range(0, total, chunk)]
    results = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        for part in pool.map(_run_jobs_slice, slices, [root] * len(slices)):
            results.extend(part)
            if progress:
                progress(len(results), total)
    return results


def build_records(results: list[ImageResult], seed: int) -> dict[str, MMADRecord]:
    """MMAD records for every test image, with templates ordered by similarity and by a seeded shuffle."""
    slots = AnswerSlots(seed)
    templates: dict[str, list[ImageResult]] = {}
    for result in results:
        if result.job.kind == "template":
            templates.setdefault(result.job.category, []).append(result)
    records = {}
    for result in sorted((r for r in results if r.job.kind != "template"), key=lambda r: r.job.image_path):
        job, own = result.job, templates.get(result.job.category, [])
        rng = question_rng(seed, job.category, job.index, job.kind)
        distance = [float(np.square(t.thumbnail - result.thumbnail).mean()) for t in own]
        similar = [own[i].job.image_path for i in np.argsort(distance, kind="stable")]
        shuffled = [own[int(i)].job.image_path for i in rng.permutation(len(own))]
        records[job.image_path] = MMADRecord(
            conversation=build_conversation(result.facts, rng, slots),
            similar_templates=similar,
            random_templates=shuffled,
            mask_path=job.mask_path,
        )
    return records


def write_domain_knowledge(path: Path, categories: Sequence[str]) -> None:
    """Write MMAD's `domain_knowledge.json` for the chosen categories from the project's seed file."""
    knowledge = to_domain_knowledge([e for e in load_seed_file(KNOWLEDGE_FILE) if e.category in categories])
    path.write_text(json.dumps(knowledge, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def resolve_categories(categories: Sequence[str] | None) -> list[str]:
    """The chosen categories in catalog order (all when None); unknown names raise `UserError`."""
    if categories is None:
        return list(CATEGORIES)
    names = [c.strip() for c in categories if c.strip()]
    unknown = [c for c in names if c not in CATEGORIES]
    if unknown or not names:
        raise UserError(f"unknown category {', '.join(unknown) or '(none given)'}; choose from {', '.join(CATEGORIES)}")
    return [c for c in CATEGORIES if c in names]


def check_generation_args(seed: int, per_category: int, image_size: int) -> None:
    """Raise `UserError` for a negative seed, a count outside 1..10000 or an image size outside 64..1024."""
    if int(seed) < 0:
        raise UserError(f"seed must be zero or positive, got {seed}")
    if not 1 <= int(per_category) <= MAX_PER_CATEGORY:
        raise UserError(f"per-category count must be between 1 and {MAX_PER_CATEGORY}, got {per_category}")
    if not MIN_IMAGE_SIZE <= int(image_size) <= MAX_IMAGE_SIZE:
        raise UserError(f"image size must be between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE} px, got {image_size}")


def generate_dataset(
    out_dir: Path,
    *,
    seed: int = 0,
    per_category: int = 20,
    image_size: int = 256,
    templates: int = 0,
    categories: Sequence[str] | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> SynthSummary:
    """Generate a SynthIAD dataset in MMAD format.

    Args:
        out_dir: Folder to create (must be absent or empty unless `force`).
        seed: Dataset seed; the same seed gives byte-identical files.
        per_category: K: normal and defective test images per category (K of each).
        templates: Normal templates per category, 1..1000 (0: max(3, K // 4)).
        image_size: Square image side in pixels (64..1024).
        categories: Category names (default: all eight).
        force: Replace an existing dataset folder (only after the new one is complete).
        progress: Called as `progress(done, total)` while images are rendered.
        workers: Rendering processes (files are identical for any count). More than one spawns processes that
            re-import `__main__`, so use it only from guarded entry points such as the CLI.

    Returns:
        A `SynthSummary` of what was written.

    Raises:
        UserError: Bad arguments, an occupied output folder without `force`, or an unwritable location.
    """
    started = time.perf_counter()
    check_generation_args(seed, per_category, image_size)
    if not 0 <= templates <= 1000:
        raise UserError(f"templates must be between 1 and 1000 (0: automatic), not {templates}")
    names = resolve_categories(categories)
    target = check_output_dir(Path(out_dir), force=force, markers=("mmad.json",))
    jobs = plan_jobs(int(seed), int(per_category), int(image_size), names, int(templates))
    with staged_folder(target) as staging:
        results = render_all(jobs, staging, progress, max(1, int(workers)))
        records = build_records(results, int(seed))
        dump_mmad(records, staging / "mmad.json")
        write_domain_knowledge(staging / "domain_knowledge.json", names)
    counts = Counter(q.type for record in records.values() for q in record.conversation)
    return SynthSummary(
        out_dir=target,
        num_images=len(records),
        num_templates=sum(job.kind == "template" for job in jobs),
        num_masks=sum(bool(job.mask_path) for job in jobs),
        num_questions=sum(counts.values()),
        questions_per_subtask={s: counts[s] for s in SUBTASKS if counts[s]},
        seconds=time.perf_counter() - started,
    )
