"""`reason-iad synth`: generate a SynthIAD dataset in MMAD format, or (with --gallery) the example gallery.

reason-iad synth --out data/synth --per-category 20 --seed 0
reason-iad synth --gallery --out examples --force
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tqdm import tqdm

from reason_iad.synth.gallery import GALLERY_SEED, write_gallery
from reason_iad.synth.writer import SynthSummary, generate_dataset


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `synth` subcommand to the `reason-iad` parser."""
    parser = subparsers.add_parser(
        "synth",
        help="generate the procedural SynthIAD dataset (MMAD format)",
        description="Render SynthIAD images, masks and MMAD questions into a new folder.",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (absent or empty)")
    parser.add_argument(
        "--seed", type=int, default=None, metavar="N", help=f"seed (default 0; {GALLERY_SEED} with --gallery)"
    )
    parser.add_argument(
        "--per-category",
        type=int,
        default=20,
        metavar="K",
        help="normal and defective test images per category (K each)",
    )
    parser.add_argument(
        "--templates", type=int, default=0, metavar="N", help="normal templates per category (default: max(3, K/4))"
    )
    parser.add_argument(
        "--image-size", type=int, default=256, metavar="PX", help="square image side, 64..1024 (default 256)"
    )
    parser.add_argument("--categories", default=None, metavar="A,B", help="comma-separated categories (default: all)")
    parser.add_argument("--force", action="store_true", help="replace an existing output folder after success")
    parser.add_argument("--gallery", action="store_true", help="write the small example gallery instead of a dataset")
    parser.set_defaults(handler=run)


class _ProgressBar:
    """A tqdm bar on stderr (only on a terminal), opened at the first report when the total is known."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = tqdm(total=total, unit="img", desc="synth", file=sys.stderr, disable=None, leave=False)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _summary_line(summary: SynthSummary, what: str) -> str:
    extras = f"{summary.num_templates} templates, " if summary.num_templates else ""
    return (
        f"wrote {what}: {summary.num_images} images ({extras}{summary.num_masks} masks), "
        f"{summary.num_questions} questions to {summary.out_dir} in {summary.seconds:.1f} s"
    )


def run(args: argparse.Namespace) -> int:
    """Handle `reason-iad synth`; errors in the arguments raise `UserError`."""
    categories = None if args.categories is None else args.categories.split(",")
    if args.gallery:
        seed = GALLERY_SEED if args.seed is None else args.seed
        summary = write_gallery(
            args.out, seed=seed, image_size=args.image_size, categories=categories, force=args.force
        )
        print(_summary_line(summary, "gallery"))
        return 0
    bar = _ProgressBar()
    try:
        summary = generate_dataset(
            args.out,
            seed=0 if args.seed is None else args.seed,
            per_category=args.per_category,
            templates=args.templates,
            image_size=args.image_size,
            categories=categories,
            force=args.force,
            progress=bar,
            workers=min(2, os.cpu_count() or 1),
        )
    finally:
        bar.close()
    print(_summary_line(summary, "SynthIAD"))
    return 0
