"""`reason-iad train-tiny`: train the embedded default models (tiny inspector and/or tiny CLIP) from scratch.

reason-iad train-tiny --what both --minutes 25 --out runs/tiny
reason-iad train-tiny --what inspector --minutes 25 --out runs/tiny --resume
reason-iad train-tiny --what both --out runs/tiny --install   # then copy into reason_iad/assets/
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from reason_iad.errors import UserError


def register(subparsers) -> None:
    """Add the `train-tiny` subcommand."""
    parser = subparsers.add_parser(
        "train-tiny",
        help="train the embedded demonstration models on procedural SynthIAD data (CPU, minutes)",
        description="Train the tiny Qwen2.5-VL-class inspector and/or the tiny open_clip retriever from scratch on "
        "a SynthIAD training split (seed 1000; evaluate on other seeds). Writes OUT/inspector and OUT/clip "
        "(checkpoint, loss.jsonl, model/), resumable with --resume.",
    )
    parser.add_argument("--what", choices=["inspector", "clip", "both"], default="both")
    parser.add_argument("--minutes", type=float, default=25.0, help="training time budget per model")
    parser.add_argument(
        "--max-steps",
        type=int,
        default=0,
        help="stop the inspector after this many steps, before its time budget is spent (0: run the budget; the "
        "learning-rate schedule still spans --minutes)",
    )
    parser.add_argument("--clip-minutes", type=float, default=9.0, help="time budget of the retriever")
    parser.add_argument("--out", default="runs/tiny", help="output folder")
    parser.add_argument("--resume", action="store_true", help="continue the inspector from OUT's checkpoint")
    parser.add_argument("--seed", type=int, default=0, help="model initialisation seed")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="peak learning rate of the inspector")
    parser.add_argument("--warm-start", metavar="CHECKPOINT", help="start the inspector from another run's weights")
    parser.add_argument(
        "--subtask-weight",
        action="append",
        default=[],
        metavar="SUBTASK=W",
        help="sample SUBTASK's questions W times as often, e.g. 'Anomaly Detection=4'",
    )
    parser.add_argument(
        "--recipe",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a number of the data recipe, e.g. 'knowledge_rate=0.7' (see training.data.DataRecipe)",
    )
    parser.add_argument("--evidence-cache", metavar="FILE", help="JSON file caching the pool's memory evidence")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--install",
        action="store_true",
        help="copy the trained models into reason_iad/assets/ (replacing the shipped ones)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler of `train-tiny`."""
    import torch

    from reason_iad.training.clip import ClipSettings, train_clip
    from reason_iad.training.data import DataRecipe
    from reason_iad.training.inspector import TrainSettings, train_inspector

    if args.minutes <= 0 or args.clip_minutes <= 0:
        raise UserError("--minutes and --clip-minutes must be positive")
    if args.max_steps < 0:
        raise UserError("--max-steps must be 0 (no limit) or positive")
    torch.set_num_threads(max(1, args.threads))
    out = Path(args.out)
    if args.what in ("inspector", "both"):
        settings = TrainSettings(
            minutes=args.minutes,
            seed=args.seed,
            learning_rate=args.learning_rate,
            warmup_steps=20 if args.warm_start else 100,
            max_steps=args.max_steps,
        )
        recipe = DataRecipe(subtask_weights=_weights(args.subtask_weight), **_recipe(args.recipe))
        warm = Path(args.warm_start) if args.warm_start else None
        cache = Path(args.evidence_cache) if args.evidence_cache else None
        summary = train_inspector(
            out / "inspector", settings, recipe, resume=args.resume, warm_start=warm, evidence_cache=cache
        )
        print(f"inspector: {summary}")
        if args.install:
            install(Path(summary["folder"]), "inspector")
    if args.what in ("clip", "both"):
        summary = train_clip(out / "clip", ClipSettings(minutes=args.clip_minutes, seed=args.seed))
        print(f"clip: {summary}")
        if args.install:
            install(Path(summary["folder"]), "clip")
    return 0


def _weights(items: list[str]) -> tuple[tuple[str, float], ...]:
    """Parse `SUBTASK=W` flags."""
    from reason_iad.mmad import SUBTASKS

    weights = []
    for item in items:
        name, sep, value = item.rpartition("=")
        if not sep or name.strip() not in SUBTASKS:
            raise UserError(f"--subtask-weight must look like 'Anomaly Detection=4' with an MMAD subtask, got {item!r}")
        try:
            weights.append((name.strip(), float(value)))
        except ValueError:
            raise UserError(f"--subtask-weight {item!r}: the weight must be a number") from None
    return tuple(weights)


def _recipe(items: list[str]) -> dict[str, float | int]:
    """Parse `FIELD=VALUE` overrides of the numeric `DataRecipe` fields."""
    from dataclasses import fields

    from reason_iad.training.data import DataRecipe

    kinds = {f.name: f.type for f in fields(DataRecipe) if f.type in ("int", "float", int, float)}
    out: dict[str, float | int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in kinds:
            raise UserError(f"--recipe must look like 'knowledge_rate=0.7' with one of {sorted(kinds)}, got {item!r}")
        try:
            out[name] = int(value) if kinds[name] in ("int", int) else float(value)
        except ValueError:
            raise UserError(f"--recipe {item!r}: the value must be a number") from None
    return out


def install(folder: Path, kind: str) -> Path:
    """Copy a trained model folder into `reason_iad/assets/<kind>/`, keeping its MODEL_CARD.md if any."""
    from reason_iad.backends.embedded import ASSETS_DIR

    target = ASSETS_DIR / kind
    card = (target / "MODEL_CARD.md").read_text(encoding="utf-8") if (target / "MODEL_CARD.md").exists() else None
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(folder, target)
    if card is not None:
        (target / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    print(f"installed {kind} into {target}; update MODEL_CARD.md (reason_iad.training.card) before committing")
    return target
