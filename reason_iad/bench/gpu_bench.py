"""`reason-iad bench gpu`: a full-depth Qwen2.5-VL-7B-shaped random model built on the device, one question.

The model has Qwen2.5-VL-7B-Instruct's exact configuration (28 language layers, 32 vision blocks, 152k vocabulary,
untied head) with small random weights, made directly on the device: nothing is downloaded or written to disk.
One one-shot MMAD question (template + query image) with two knowledge texts goes through the engine in bf16 and,
when bitsandbytes imports, in 4-bit NF4 (vision tower and lm_head kept in bf16, as `load_backend` does). The
figures are speed and memory only; random weights answer randomly.

`--dry-run` builds 2 layers at small widths so the whole path (build, quantise, inspect, table) runs on a CPU.
"""

from __future__ import annotations

import dataclasses
import gc
import resource
import statistics
import time
from dataclasses import dataclass

import torch
from PIL import Image

from reason_iad.bench.qwen_shape import build_random_model, quantize_nf4, qwen25_vl_config, shape_processor, token_ids
from reason_iad.config import ReasoningConfig
from reason_iad.reasoning.engine import InspectionRequest, Reasoner
from reason_iad.reasoning.prompt import Question

KNOWLEDGE = (
    "Scratch: a thin straight or slightly curved line, darker or brighter than the surrounding metal, often with "
    "sharp edges; it follows the direction of handling and does not change the outline of the part.",
    "Good: the surface is evenly brushed with soft lighting changes only, the edge is continuous and round, and "
    "the printed marks are complete and sharp.",
)
QUESTION = Question(
    "There is a defect in the object. What is the type of the defect?",
    (("A", "Scratch."), ("B", "Crack."), ("C", "Contamination."), ("D", "Deformation.")),
)


@dataclass(frozen=True)
class GpuBenchOptions:
    """What `run_gpu_bench` builds and runs."""

    device: str = "cuda"
    text_layers: int = 28
    vision_depth: int = 32
    small: bool = False  # dry-run widths
    image_px: int = 672  # query and template side: 48x48 patches = 576 image tokens each
    steps: int = 15
    latents: int = 4
    answer_tokens: int = 32
    repeats: int = 3
    precisions: tuple[str, ...] = ("bf16", "nf4")
    processor: str | None = None


FULL_DEFAULTS = dict(text_layers=28, vision_depth=32, image_px=672, steps=15, latents=4, answer_tokens=32, repeats=3)
DRY_RUN_DEFAULTS = dict(text_layers=2, vision_depth=2, image_px=112, steps=2, latents=2, answer_tokens=4, repeats=1)


def bench_options(
    dry_run: bool, device: str, precisions: tuple[str, ...] = ("bf16", "nf4"), processor: str | None = None, **given
) -> GpuBenchOptions:
    """Options for a full-shape run or a `dry_run`; `given` values that are not None override the defaults."""
    defaults = DRY_RUN_DEFAULTS if dry_run else FULL_DEFAULTS
    chosen = defaults | {k: v for k, v in given.items() if v is not None}
    return GpuBenchOptions(device=device, small=dry_run, precisions=precisions, processor=processor, **chosen)


@dataclass(frozen=True)
class PrecisionRow:
    """Figures of one precision."""

    precision: str
    prefix_tokens: int
    prefix_ms: float  # prompt rendering, processor, vision tower and the prefix forward
    step_ms: float  # one engine step: all candidates in one batched suffix forward over the cache
    candidates: int
    suffix_ms: float  # one suffix forward of a single row (latents + header) over the cache
    full_ms: float  # a whole `full` inspection (T steps, fixed answer length)
    plain_ms: float  # `plain` mode: no knowledge, no latents, same answer length
    knowledge_ms: float  # `knowledge` mode: the full run's prompt answered directly
    weights_gib: float
    peak_gib: float  # CUDA allocator peak (max_memory_allocated) during the runs; peak RSS on a CPU
    answer: str


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _images(side: int) -> tuple[Image.Image, Image.Image]:
    template = Image.new("RGB", (side, side), (128, 124, 118))
    query = template.copy()
    query.paste((30, 30, 30), (side // 3, side // 3, side // 3 + max(side // 20, 2), side // 2))  # a dark scratch
    return query, template


def _timed_run(backend, config: ReasoningConfig, request, device: str) -> tuple[float, float, list[float], object]:
    """(prefix ms, total ms, step ms list, inspection) of one inspection, device-synchronised."""
    _sync(device)
    started = time.perf_counter()
    session = Reasoner(backend, config).start(request)
    _sync(device)
    prefix_ms = (time.perf_counter() - started) * 1000
    steps = [record.elapsed_ms for record in session.iterate()]
    inspection = session.result()
    _sync(device)
    return prefix_ms, (time.perf_counter() - started) * 1000, steps, inspection


def _suffix_ms(backend, session, device: str, repeats: int) -> float:
    suffix = torch.cat([session.state.latents, session.header])[None]  # [1, L + H, D]
    samples = []
    for _ in range(repeats + 1):
        _sync(device)
        started = time.perf_counter()
        backend.suffix_forward(session.prefix, suffix)
        _sync(device)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples[1:])


def _peak_gib(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def measure(backend, options: GpuBenchOptions, precision: str, weights_gib: float) -> PrecisionRow:
    """Warm up, then time `full`, `plain` and `knowledge` inspections of the same one-shot question."""
    query, template = _images(options.image_px)
    request = InspectionRequest(query, QUESTION, template, category="metal_plate", knowledge=KNOWLEDGE)
    fixed = dict(max_new_tokens=options.answer_tokens, min_new_tokens=options.answer_tokens)
    full = ReasoningConfig(mode="full", num_steps=options.steps, num_latent_tokens=options.latents, **fixed)
    device = options.device
    _timed_run(backend, dataclasses.replace(full, num_steps=1), request, device)  # warm-up (kernels, allocator)
    runs = [_timed_run(backend, full, request, device) for _ in range(options.repeats)]
    plain = [
        _timed_run(backend, dataclasses.replace(full, mode="plain"), request, device)[1] for _ in range(options.repeats)
    ]
    knowledge = [
        _timed_run(backend, dataclasses.replace(full, mode="knowledge"), request, device)[1]
        for _ in range(options.repeats)
    ]
    session = Reasoner(backend, full).start(request)
    steps = [ms for run in runs for ms in run[2]]
    inspection = runs[-1][3]
    return PrecisionRow(
        precision=precision,
        prefix_tokens=session.prefix.length,
        prefix_ms=statistics.median(r[0] for r in runs),
        step_ms=statistics.median(steps),
        candidates=1 + 2 * full.num_noise_pairs + full.num_latent_tokens,
        suffix_ms=_suffix_ms(backend, session, device, options.repeats * 3),
        full_ms=statistics.median(r[1] for r in runs),
        plain_ms=statistics.median(plain),
        knowledge_ms=statistics.median(knowledge),
        weights_gib=weights_gib,
        peak_gib=_peak_gib(device),
        answer=inspection.answer,
    )


def _weights_gib(model) -> float:
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 2**30


def _release(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def bench_precision(options: GpuBenchOptions, processor, precision: str) -> PrecisionRow:
    """Build the random model on the device (quantised for `nf4`) and measure it; frees it afterwards."""
    from reason_iad.backends.transformers_backend import TransformersBackend

    tokenizer = processor.tokenizer
    vocab = None if not options.small else len(tokenizer)
    config = qwen25_vl_config(token_ids(tokenizer), options.text_layers, options.vision_depth, options.small, vocab)
    model = build_random_model(config, options.device)
    if precision == "nf4":
        quantize_nf4(model)
    _release(options.device)  # the peak below counts the inference, not the bf16 weights of quantised layers
    backend = TransformersBackend(
        model,
        processor,
        name=f"random Qwen2.5-VL-7B shape ({precision})",
        quantization="4bit" if precision == "nf4" else "none",
    )
    row = measure(backend, options, precision, _weights_gib(model))
    del backend, model
    _release(options.device)
    return row


def bnb_available() -> bool:
    """Whether bitsandbytes imports here (the 4-bit row needs it)."""
    try:
        import bitsandbytes  # noqa: F401
    except (ImportError, RuntimeError, OSError):
        return False
    return True


def run_gpu_bench(options: GpuBenchOptions) -> list[PrecisionRow | str]:
    """One row per precision; a precision that cannot run gives a one-line reason instead."""
    processor = shape_processor(options.processor)
    rows: list[PrecisionRow | str] = []
    for precision in options.precisions:
        if precision == "nf4" and not bnb_available():
            rows.append("nf4: skipped, bitsandbytes does not import (pip install bitsandbytes)")
            continue
        rows.append(bench_precision(options, processor, precision))
    return rows


def format_table(rows: list[PrecisionRow | str], options: GpuBenchOptions) -> str:
    """The one table: prefix, engine step, single suffix forward, full/plain ratios, memory."""
    memory = "peak GPU GiB" if options.device.startswith("cuda") else "peak RSS GiB"
    head = (
        f"| precision | prefix tok | prefix ms | ms / latent step (C cand.) | suffix fwd ms | full ms | "
        f"full/plain | full/knowledge | weights GiB | {memory} | answer |"
    )
    lines = [
        f"Qwen2.5-VL-7B shape, random weights: {options.text_layers} language layers, {options.vision_depth} vision "
        f"blocks{' (dry-run widths)' if options.small else ''}; one-shot MMAD question, 2 knowledge texts, "
        f"{options.image_px}px images; T={options.steps}, L={options.latents}, answer {options.answer_tokens} tokens; "
        f"median of {options.repeats} on {options.device}",
        head,
        "|" + "---|" * (head.count("|") - 1),
    ]
    for row in rows:
        if isinstance(row, str):
            lines.append(f"| {row} |")
            continue
        lines.append(
            f"| {row.precision} | {row.prefix_tokens} | {row.prefix_ms:.1f} | {row.step_ms:.2f} ({row.candidates}) | "
            f"{row.suffix_ms:.2f} | {row.full_ms:.1f} | {row.full_ms / row.plain_ms:.2f}x | "
            f"{row.full_ms / row.knowledge_ms:.2f}x | {row.weights_gib:.2f} | {row.peak_gib:.2f} | {row.answer} |"
        )
    return "\n".join(lines)
