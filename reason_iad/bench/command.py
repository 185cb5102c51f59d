"""`reason-iad bench <what>`: run one benchmark and print its figures (ratios measured within the run)."""

from __future__ import annotations

import argparse

from reason_iad.cli_options import add_model_options, backend_from_args
from reason_iad.errors import UserError

TINY_BENCH = "tiny-bench"  # the model name that selects a random ~5M-parameter Qwen2.5-VL built offline


def register(subparsers) -> None:
    """Add the `bench` subcommand and its targets."""
    parser = subparsers.add_parser("bench", help="measure speed and memory targets", description=__doc__)
    targets = parser.add_subparsers(title="targets", metavar="TARGET", required=True)
    backend = targets.add_parser(
        "backend",
        help="prefix pass vs cached suffix step vs full-sequence step",
        description="Build (or load with --model) a model, a prefix of --prefix-tokens tokens (knowledge text and "
        "two images) and a --suffix-tokens suffix; print prefix time, suffix step, full-sequence step, their ratio "
        "and peak memory.",
    )
    _model_arguments(backend)
    backend.add_argument("--prefix-tokens", type=_positive, default=1600)
    backend.add_argument("--suffix-tokens", type=_positive, default=26)
    backend.add_argument("--repeats", type=_positive, default=10)
    backend.add_argument("--threads", type=_positive, default=1, help="torch CPU threads (default 1)")
    backend.set_defaults(handler=run_backend)
    latent = targets.add_parser(
        "latent",
        help="cached engine step vs DMLR-style step; full inspection vs direct answer",
        description="Run the same inspection with our cached engine and time a DMLR-style step (full-sequence eager "
        "forward with attention maps plus a full-sequence reward forward) at the same prefix; print per-step "
        "times, their ratio, and the time of a full inspection (T steps) over a direct answer with the same prompt.",
    )
    _model_arguments(latent)
    latent.add_argument("--prefix-tokens", type=_positive, default=1600)
    latent.add_argument("--steps", type=_positive, default=15)
    latent.add_argument("--answer-tokens", type=_positive, default=64)
    latent.add_argument("--repeats", type=_positive, default=5)
    latent.add_argument("--threads", type=_positive, default=1, help="torch CPU threads (default 1)")
    latent.set_defaults(handler=run_latent)
    _register_kb(targets)
    _register_eval(targets)
    _register_memory(targets)
    _register_gpu(targets)
    _register_studio(targets)


def _register_kb(targets) -> None:
    kb = targets.add_parser(
        "kb",
        help="knowledge search latency at 1k/10k/100k entries, flat and indexed",
        description="Search latency (median, p95) of category-scoped semantic searches and full-text searches.",
    )
    kb.add_argument("--sizes", default="1000,10000,100000", help="comma-separated table sizes")
    kb.add_argument("--queries", type=_positive, default=50)
    kb.set_defaults(handler=run_kb)


def run_kb(args) -> int:
    """Handler of `bench kb`."""
    from reason_iad.bench.kb_bench import format_kb_bench, run_kb_bench

    try:
        sizes = tuple(int(s) for s in args.sizes.split(","))
    except ValueError as err:
        raise UserError(f"--sizes must be comma-separated integers, got {args.sizes!r}") from err
    if not all(100 <= s <= 2_000_000 for s in sizes):
        raise UserError("each size must be between 100 and 2,000,000")
    print(format_kb_bench(run_kb_bench(sizes, queries=args.queries)))
    return 0


def _register_eval(targets) -> None:
    evaluation = targets.add_parser(
        "eval",
        help="evaluation questions/s: one process vs Ray workers on the same synthetic subset",
        description="Generate a small SynthIAD subset in a temporary folder, answer it in one process and then with "
        "--workers Ray workers (local cluster), and print both questions/s, their ratio and whether the answers "
        "are identical.",
    )
    add_model_options(evaluation, flags=("model",), notes={"model": "(for both runs)"})
    evaluation.add_argument("--per-category", type=_positive, default=1, help="SynthIAD images per category and class")
    evaluation.add_argument("--steps", type=_positive, default=2, help="latent reasoning steps per question")
    evaluation.add_argument("--workers", type=_positive, default=2)
    evaluation.add_argument("--threads", type=_positive, default=1, help="torch CPU threads per process (default 1)")
    evaluation.add_argument("--max-new-tokens", type=_positive, default=16, help="reply length per question")
    evaluation.set_defaults(handler=run_eval)


def run_eval(args) -> int:
    """Handler of `bench eval`."""
    from reason_iad.bench.eval_bench import run_eval_bench

    result = run_eval_bench(
        model=args.model,
        per_category=args.per_category,
        steps=args.steps,
        workers=args.workers,
        threads=args.threads,
        max_new_tokens=args.max_new_tokens,
    )
    print(result.report())
    return 0


def _register_memory(targets) -> None:
    memory = targets.add_parser(
        "memory",
        help="visual memory: feature extraction, kNN at 10k/100k patches, bank size; --quality, --elpv",
        description="Time EfficientNet-Lite0 patch features per image, nearest-neighbour search of one image's "
        "patches against 10k and 100k real patch features (exact torch vs LanceDB flat vs LanceDB IVF-PQ), and a "
        "default category bank's build time and size on disk. --quality adds image/pixel AUROC per SynthIAD "
        "category with 10 and 50 exemplars (held-out test seed); --elpv adds image AUROC on ELPV mono cells "
        "(optional package elpv-dataset).",
    )
    memory.add_argument("--quality", action="store_true", help="procedural image and pixel AUROC per category")
    memory.add_argument("--elpv", action="store_true", help="ELPV mono-cell image AUROC (pip install elpv-dataset)")
    memory.add_argument("--speed", action=argparse.BooleanOptionalAction, default=True, help="speed figures")
    memory.add_argument("--test-seed", type=int, default=2, help="procedural test seed (defaults were tuned on 1)")
    memory.add_argument("--per-category", type=_positive, default=20, help="normal and defective test images each")
    memory.add_argument("--exemplars", default="10,50", help="comma-separated exemplar counts for --quality")
    memory.add_argument("--image-size", type=_positive, default=None, help="backbone input side (default: config)")
    memory.add_argument("--device", default="cpu")
    memory.add_argument("--threads", type=_positive, default=1, help="torch CPU threads (default 1)")
    memory.add_argument("--repeats", type=_positive, default=5)
    memory.set_defaults(handler=run_memory)


def run_memory(args) -> int:
    """Handler of `bench memory`."""
    import torch

    from reason_iad.bench import memory_quality as quality
    from reason_iad.bench.memory_bench import run_memory_bench
    from reason_iad.memory import MemoryConfig, load_backbone

    torch.set_num_threads(args.threads)
    try:
        counts = tuple(int(c) for c in args.exemplars.split(","))
    except ValueError as err:
        raise UserError(f"--exemplars must be comma-separated integers, got {args.exemplars!r}") from err
    if not all(2 <= c <= 1000 for c in counts):
        raise UserError("each exemplar count must be between 2 and 1000")
    overrides = {"device": args.device} | ({"image_size": args.image_size} if args.image_size else {})
    config = MemoryConfig(**overrides)
    backbone = load_backbone(config.backbone, config.image_size, config.device)
    if args.speed:
        print(run_memory_bench(config, backbone, repeats=args.repeats).report(), flush=True)
    if args.quality:
        report = quality.evaluate_procedural(
            config,
            backbone,
            counts,
            args.per_category,
            test_seed=args.test_seed,
            progress=lambda line: print(line, flush=True),
        )
        print(report.report(), flush=True)
    if args.elpv:
        print(quality.evaluate_elpv(config, backbone, progress=lambda line: print(line, flush=True)).report())
    return 0


def _register_gpu(targets) -> None:
    gpu = targets.add_parser(
        "gpu",
        help="7B-shaped random Qwen2.5-VL on the GPU: prefix, latent step, full/plain, peak memory (bf16, NF4)",
        description="Build a random-weight model with Qwen2.5-VL-7B-Instruct's exact configuration (full depth) "
        "directly on the device, answer one one-shot MMAD question with two knowledge texts through the engine in "
        "bf16 and 4-bit NF4 (when bitsandbytes imports) and print one table. --dry-run: 2 layers at small widths.",
    )
    gpu.add_argument("--dry-run", action="store_true", help="2 layers, small widths, small images, 2 steps")
    gpu.add_argument("--device", default=None, help="default: cuda (cpu with --dry-run)")
    gpu.add_argument("--text-layers", type=_positive, default=None, help="default 28 (2 with --dry-run)")
    gpu.add_argument("--vision-depth", type=_positive, default=None, help="default 32 (2 with --dry-run)")
    gpu.add_argument("--image-px", type=_positive, default=None, help="image side, default 672 (112 with --dry-run)")
    gpu.add_argument("--steps", type=_positive, default=None, help="latent steps T, default 15 (2 with --dry-run)")
    gpu.add_argument("--answer-tokens", type=_positive, default=None, help="fixed answer length, default 32")
    gpu.add_argument("--repeats", type=_positive, default=None, help="timed inspections per mode, default 3")
    gpu.add_argument("--precisions", default="bf16,nf4", help="comma-separated: bf16, nf4")
    gpu.add_argument(
        "--processor",
        default=None,
        help="a saved processor folder (real Qwen tokenizer); default: "
        "the project's small tokenizer with Qwen2.5-VL's image settings",
    )
    gpu.add_argument("--threads", type=_positive, default=1, help="torch CPU threads (default 1)")
    gpu.set_defaults(handler=run_gpu)


def run_gpu(args) -> int:
    """Handler of `bench gpu`."""
    import torch

    from reason_iad.bench.gpu_bench import bench_options, format_table, run_gpu_bench

    torch.set_num_threads(args.threads)
    precisions = tuple(p.strip() for p in args.precisions.split(",") if p.strip())
    if not precisions or set(precisions) - {"bf16", "nf4"}:
        raise UserError(f"--precisions takes bf16 and/or nf4, got {args.precisions!r}")
    device = args.device or ("cpu" if args.dry_run else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("bench gpu needs a CUDA device (or --dry-run / --device cpu)")
    given = {
        "text_layers": args.text_layers,
        "vision_depth": args.vision_depth,
        "image_px": args.image_px,
        "steps": args.steps,
        "answer_tokens": args.answer_tokens,
        "repeats": args.repeats,
    }
    options = bench_options(args.dry_run, device, precisions, args.processor, **given)
    print(format_table(run_gpu_bench(options), options), flush=True)
    return 0


def _register_studio(targets) -> None:
    studio = targets.add_parser(
        "studio",
        help="the studio under load through its API: concurrent inspections, edits, bank rebuilds, overflow",
        description="Start the studio (app.py, on a temporary knowledge base unless --db; or use --url), then at "
        "once: --clients users inspect, --edits knowledge entries are added by --edit-workers curators and the "
        "category's exemplars change --rebuilds times; then more inspections than --queue-size are submitted at once. "
        "Prints p50/p95 inspect latency and the refusals; checks that every edit is in the history at its version "
        "and every memory bank matches its exemplars. Exit code 1 when anything was lost, failed or not refused.",
    )
    studio.add_argument("--url", help="a running studio (without --auth) to drive instead of starting one")
    studio.add_argument("--db", help="knowledge base folder of the studio (default: a new temporary one)")
    add_model_options(studio, flags=("model",), notes={"model": "(loaded by the started studio)"})
    studio.add_argument("--category", default="SynthIAD / wood", help="'dataset / category' to inspect and curate")
    studio.add_argument("--image", help="image to inspect (default: the gallery's wood/liquid.png)")
    studio.add_argument("--exemplar", help="normal image to add as exemplar (default: the gallery's wood/good.png)")
    studio.add_argument("--clients", type=_positive, default=8)
    studio.add_argument("--edits", type=_positive, default=100)
    studio.add_argument("--edit-workers", type=_positive, default=4)
    studio.add_argument("--rebuilds", type=int, default=2, help="exemplar changes (add, remove, add, ...)")
    studio.add_argument(
        "--queue-size",
        type=_positive,
        default=16,
        help="the studio's queue bound (passed to app.py as REASON_IAD_MAX_QUEUE; sizes the overflow burst)",
    )
    studio.add_argument("--overflow", type=int, default=6, help="inspections submitted beyond the queue's room")
    studio.set_defaults(handler=run_studio)


def run_studio(args) -> int:
    """Handler of `bench studio`."""
    from reason_iad.bench.studio_bench import run_studio_load
    from reason_iad.bench.studio_checks import StudioProcess, run_checks

    plan = _studio_plan(args)
    if args.url:
        result, db = run_studio_load(args.url, plan), args.db
        print(result.report(), flush=True)
        problems = run_checks(result, db)
    else:
        with StudioProcess(args.model, args.db, args.queue_size) as process:  # checks read its store while it runs
            print(f"studio started on {process.url} (knowledge base {process.db})", flush=True)
            result, db = run_studio_load(process.url, plan), process.db
            print(result.report(), flush=True)
            problems = run_checks(result, db)
    stored = "" if db else " (stored data not checked: pass --db)"
    print("checks: " + (f"all passed{stored}" if not problems else f"{len(problems)} problems{stored}"))
    for problem in problems[:20]:
        print(f"  {problem}")
    return 0 if not problems else 1


def _studio_plan(args):
    from pathlib import Path

    from reason_iad.bench.studio_bench import LoadPlan
    from reason_iad.paths import EXAMPLES_DIR

    image = Path(args.image or EXAMPLES_DIR / "wood" / "liquid.png")
    exemplar = Path(args.exemplar or EXAMPLES_DIR / "wood" / "good.png")
    for name, path in (("--image", image), ("--exemplar", exemplar)):
        if not path.is_file():
            raise UserError(f"{name}: no file {path}")
    if args.rebuilds < 0 or args.overflow < 0:
        raise UserError("--rebuilds and --overflow must not be negative")
    if " / " not in args.category:
        raise UserError(f"--category takes 'dataset / category' as the studio lists it, got {args.category!r}")
    return LoadPlan(
        image=image,
        exemplar=exemplar,
        choice=args.category,
        clients=args.clients,
        edits=args.edits,
        edit_workers=args.edit_workers,
        rebuilds=args.rebuilds,
        queue_size=args.queue_size,
        overflow=args.overflow,
    )


def _model_arguments(parser) -> None:
    add_model_options(
        parser,
        defaults={"model": TINY_BENCH},
        notes={
            "model": f"or '{TINY_BENCH}' (a random ~5M-parameter Qwen2.5-VL built offline on the CPU; the other "
            "model flags do not apply to it)"
        },
    )


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0 or value > 1_000_000:
        raise argparse.ArgumentTypeError(f"expected a positive count, got {text}")
    return value


def _backend(args):
    import torch

    torch.set_num_threads(args.threads)
    if args.model == TINY_BENCH:
        from reason_iad.backends.tiny import BENCH_SIZE, build_tiny_model
        from reason_iad.backends.transformers_backend import TransformersBackend

        model, processor = build_tiny_model("qwen2_5_vl", BENCH_SIZE, seed=0)
        return TransformersBackend(model, processor, name="tiny-bench (random Qwen2.5-VL, built offline)")
    from reason_iad.backends.loading import load_backend

    return load_backend(backend_from_args(args))


def run_backend(args) -> int:
    """Handler of `bench backend`."""
    from reason_iad.bench.backend_bench import run_backend_bench

    print(run_backend_bench(_backend(args), args.prefix_tokens, args.suffix_tokens, args.repeats).report())
    return 0


def run_latent(args) -> int:
    """Handler of `bench latent`."""
    from reason_iad.bench.latent_bench import run_latent_bench

    backend = _backend(args)
    print(run_latent_bench(backend, args.prefix_tokens, args.steps, args.answer_tokens, args.repeats).report())
    return 0
