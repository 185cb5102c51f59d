"""`reason-iad bench <what>`: run one benchmark and print its figures (ratios measured within the run)."""

from __future__ import annotations

import argparse

from reason_iad.errors import UserError


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


def _register_kb(targets) -> None:
    kb = targets.add_parser(
        "kb", help="knowledge search latency at 1k/10k/100k entries, flat and indexed",
        description="Search latency (median, p95) of category-scoped semantic searches and full-text searches.",
    )  # fmt: skip
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
        "eval", help="evaluation questions/s: one process vs Ray workers on the same synthetic subset",
        description="Generate a small SynthIAD subset in a temporary folder, answer it in one process and then with "
        "--workers Ray workers (local cluster), and print both questions/s, their ratio and whether the answers "
        "are identical.",
    )  # fmt: skip
    evaluation.add_argument("--model", default="embedded", help="'embedded' (tiny random stand-in), a folder, a hub id")
    evaluation.add_argument("--per-category", type=_positive, default=1, help="SynthIAD images per category and class")
    evaluation.add_argument("--steps", type=_positive, default=2, help="latent reasoning steps per question")
    evaluation.add_argument("--workers", type=_positive, default=2)
    evaluation.add_argument("--threads", type=_positive, default=1, help="torch CPU threads per process (default 1)")
    evaluation.add_argument("--max-new-tokens", type=_positive, default=16, help="reply length per question")
    evaluation.set_defaults(handler=run_eval)


def run_eval(args) -> int:
    """Handler of `bench eval`."""
    from reason_iad.bench.eval_bench import run_eval_bench

    result = run_eval_bench(model=args.model, per_category=args.per_category, steps=args.steps, workers=args.workers,
                            threads=args.threads, max_new_tokens=args.max_new_tokens)  # fmt: skip
    print(result.report())
    return 0

def _model_arguments(parser) -> None:
    parser.add_argument(
        "--model", default="tiny-bench", help="'tiny-bench' (random ~5M-parameter Qwen2.5-VL), a folder or a hub id"
    )
    parser.add_argument("--quantization", choices=["none", "4bit", "8bit"], default="none")
    parser.add_argument("--device", default="auto")


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0 or value > 1_000_000:
        raise argparse.ArgumentTypeError(f"expected a positive count, got {text}")
    return value


def _backend(args):
    import torch

    torch.set_num_threads(args.threads)
    if args.model == "tiny-bench":
        from reason_iad.backends.tiny import BENCH_SIZE, build_tiny_model
        from reason_iad.backends.transformers_backend import TransformersBackend

        model, processor = build_tiny_model("qwen2_5_vl", BENCH_SIZE, seed=0)
        return TransformersBackend(model, processor, name="tiny-bench (random Qwen2.5-VL, built offline)")
    from reason_iad.backends.loading import load_backend
    from reason_iad.config import BackendConfig

    return load_backend(BackendConfig(model=args.model, quantization=args.quantization, device=args.device))


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
