"""`reason-iad bench eval`: evaluation throughput in one process vs Ray workers on this machine.

Both runs answer the same small SynthIAD subset (generated into a temporary folder) with the same model and
settings; questions/s counts answering time only (after the model, or every worker's replica, was loaded), and
the start-up time of each is reported beside it. The answers of both runs are compared (timings aside).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reason_iad.config import BackendConfig, ReasoningConfig
from reason_iad.eval.answers import ANSWERS_FILE, comparable, read_answers
from reason_iad.eval.run_config import EvalRunConfig
from reason_iad.eval.runner import EvalRunResult, run_eval


@dataclass(frozen=True)
class EvalBenchResult:
    """Figures of one evaluation benchmark."""

    model: str
    images: int
    questions: int
    steps: int
    threads: int
    single: EvalRunResult
    distributed: EvalRunResult
    identical: bool

    @property
    def ratio(self) -> float:
        """Ray questions/s over single-process questions/s."""
        single = self.single.questions_per_second
        return self.distributed.questions_per_second / single if single else 0.0

    def report(self) -> str:
        """Human-readable figures."""
        single, ray = self.single, self.distributed
        return "\n".join(
            [
                f"model: {self.model}",
                f"subset: {self.images} SynthIAD images, {self.questions} questions; mode full, {self.steps} steps, "
                f"one-shot, knowledge all; {self.threads} torch thread(s) per process",
                f"single process: {single.questions_per_second:.2f} questions/s "
                f"({single.answer_seconds:.1f} s answering, "
                f"{single.setup_seconds:.1f} s start-up)",
                f"Ray, {ray.workers} workers: {ray.questions_per_second:.2f} questions/s ({ray.answer_seconds:.1f} s "
                f"answering, {ray.setup_seconds:.1f} s start-up incl. the local cluster)",
                f"ratio (Ray / single): {self.ratio:.2f}x",
                f"answers identical: {'yes' if self.identical else 'NO'}",
            ]
        )


def run_eval_bench(
    model: str = "embedded",
    per_category: int = 1,
    categories: Sequence[str] | None = None,
    steps: int = 2,
    workers: int = 2,
    threads: int = 1,
    max_new_tokens: int = 16,
) -> EvalBenchResult:
    """Answer one synthetic subset in one process, then with `workers` Ray workers, and compare.

    Args:
        model: The model for both runs (`embedded`, a folder or a hub id).
        per_category: SynthIAD normal and defective images per category.
        categories: SynthIAD categories (default: all eight).
        steps: Latent reasoning steps per question (mode `full`).
        workers: Ray workers (a local cluster is started).
        threads: torch CPU threads of the single process and of each worker.
        max_new_tokens: Length of each generated reply.

    Returns:
        The `EvalBenchResult`.
    """
    from reason_iad.eval.distributed import ClusterConfig, require_ray
    from reason_iad.synth import generate_dataset

    require_ray()
    with tempfile.TemporaryDirectory(prefix="reason-iad-bench-eval-") as tmp:
        root = Path(tmp)
        summary = generate_dataset(root / "data", per_category=per_category, image_size=64, categories=categories)
        config = EvalRunConfig.of(
            str(root / "data"),
            BackendConfig(model=model),
            ReasoningConfig(mode="full", num_steps=steps, max_new_tokens=max_new_tokens),
        )
        single = run_eval(config, root / "single", progress=False, threads=threads)
        cluster = ClusterConfig(workers=workers, threads_per_worker=threads)
        distributed = run_eval(config, root / "ray", progress=False, cluster=cluster)
        same = comparable(read_answers(root / "single" / ANSWERS_FILE).records) == comparable(
            read_answers(root / "ray" / ANSWERS_FILE).records
        )
    return EvalBenchResult(
        model=single.scored.meta["model"],
        images=summary.num_images,
        questions=single.planned,
        steps=steps,
        threads=threads,
        single=single,
        distributed=distributed,
        identical=same,
    )
