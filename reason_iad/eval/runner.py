"""Run an MMAD evaluation: ask every question once, append its answer line, resume where a run stopped, report.

`run_eval(config, run_dir)` reads and checks the data, refuses a run folder that holds another configuration,
loads the model (or starts Ray workers, see `distributed.py`), then writes `run.json` and one durable line per
answered question to `answers.jsonl`, with a progress bar (questions/s, ETA) on stderr. Questions already in the
answers file are skipped, so an interrupted or `limit`ed run continues where it stopped. Each question is a fresh
inspection seeded by the config, so answers do not depend on order, sharding or interruptions.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from reason_iad.errors import UserError
from reason_iad.eval.answering import LocalAnswerer, read_set
from reason_iad.eval.answers import ANSWERS_FILE, AnswerWriter, ScoreSource, read_answers
from reason_iad.eval.parse import reparsed
from reason_iad.eval.reader import EvalItem, EvalSet
from reason_iad.eval.report import ReportFiles, ScoredRun, write_run_report
from reason_iad.eval.run_config import EvalRunConfig, check_run_dir, read_run_file, write_run_file
from reason_iad.eval.score import score_answers


@dataclass(frozen=True)
class EvalRunResult:
    """What a call of `run_eval` did and the run's scores so far."""

    run_dir: Path
    total_questions: int  # after category/subtask filters and skipped images
    planned: int  # after --limit
    answered_before: int  # found in the answers file at the start (resume)
    answered_now: int
    skipped_images: tuple[str, ...]
    workers: int
    setup_seconds: float  # reading the data, loading the model or starting the workers
    answer_seconds: float  # answering (after the model was ready)
    scored: ScoredRun
    report: ReportFiles

    @property
    def questions_per_second(self) -> float:
        """Answered questions per second of answering time (0 when nothing was answered)."""
        return self.answered_now / self.answer_seconds if self.answer_seconds > 0 else 0.0


def run_eval(
    config: EvalRunConfig,
    run_dir: str | Path,
    *,
    limit: int | None = None,
    progress: bool = True,
    cluster=None,
    backend=None,
    threads: int | None = None,
    score: ScoreSource = "readout",
    parser: str = "strict",
) -> EvalRunResult:
    """Run (or resume) an evaluation and write its report into the run folder.

    Args:
        config: What decides the answers (data, model, reasoning, shots, knowledge, filters).
        run_dir: The run folder: absent, empty, or holding a run of the same configuration (resumed).
        limit: Ask only the first `limit` questions of the set (a later call with a larger limit continues).
        progress: Show a progress bar on stderr (on a terminal).
        cluster: A `distributed.ClusterConfig` to answer with Ray workers; None answers in this process.
        backend: An already loaded backend for the in-process run (tests, benchmarks).
        threads: torch CPU threads in this process (Ray workers use `cluster.threads_per_worker`).
        score: Which letter the report scores: `readout` or `parsed`.
        parser: How `parsed` reads a reply's letter: `strict` (as recorded) or `mmad` (MMAD's rules).

    Returns:
        An `EvalRunResult`; answers are in `run_dir/answers.jsonl`, the report beside them.

    Raises:
        UserError: Any bad input, before anything is written.
    """
    started = time.perf_counter()
    if limit is not None and limit < 1:
        raise UserError(f"limit must be at least 1, not {limit}")
    eval_set = read_set(config)
    items = eval_set.items[:limit] if limit else eval_set.items
    run_dir = Path(run_dir)
    resuming = check_run_dir(run_dir, config)
    before = read_answers(run_dir / ANSWERS_FILE).ids if resuming else frozenset()
    todo = [item for item in items if item.id not in before]
    facts = {"questions": len(eval_set.items), "skipped_images": list(eval_set.skipped_images)}
    answerer = _answerer(config, eval_set, cluster, backend, threads) if todo else None
    setup_seconds = answer_seconds = 0.0
    if answerer is not None:
        try:
            answerer.start()
            write_run_file(run_dir, config, facts)
            setup_seconds = time.perf_counter() - started
            answer_seconds = _answer_all(answerer, todo, run_dir, len(items), progress)
        finally:
            answerer.close()
    scored, report = report_run(run_dir, score, parser=parser)
    return EvalRunResult(
        run_dir=run_dir,
        total_questions=len(eval_set.items),
        planned=len(items),
        answered_before=len(items) - len(todo),
        answered_now=len(todo),
        skipped_images=eval_set.skipped_images,
        workers=answerer.workers if answerer else 0,
        setup_seconds=setup_seconds,
        answer_seconds=answer_seconds,
        scored=scored,
        report=report,
    )


def _answerer(config: EvalRunConfig, eval_set: EvalSet, cluster, backend, threads):
    if cluster is None:
        return LocalAnswerer(config, eval_set, backend, threads)
    from reason_iad.eval.distributed import RayAnswerer

    return RayAnswerer(config, eval_set.knowledge, cluster)


def _answer_all(answerer, todo: Sequence[EvalItem], run_dir: Path, planned: int, progress: bool) -> float:
    started = time.perf_counter()
    bar = tqdm(
        total=planned,
        initial=planned - len(todo),
        unit="q",
        desc="eval",
        file=sys.stderr,
        disable=None if progress else True,
        dynamic_ncols=True,
        smoothing=0.1,
    )
    with AnswerWriter(run_dir / ANSWERS_FILE) as writer, bar:
        for record in answerer.answers(todo):
            writer.append(record)
            bar.update(1)
    return time.perf_counter() - started


def load_scored_run(
    run_dir: str | Path, score: ScoreSource = "readout", label: str | None = None, parser: str = "strict"
) -> ScoredRun:
    """Score the answers of a run folder (`run.json` + `answers.jsonl`); `parser` reads the replies for `parsed`."""
    run_dir = Path(run_dir)
    run = read_run_file(run_dir)
    config = EvalRunConfig.from_dict(run["config"])
    log = read_answers(run_dir / ANSWERS_FILE)
    reasoning = config.reasoning
    meta = {
        "model": config.backend.model,
        "mode": reasoning.mode,
        "readout": reasoning.readout,
        "steps": reasoning.num_steps if reasoning.uses_latents else 0,
        "seed": reasoning.seed,
        "shots": config.shots,
        "template": "similar" if config.similar_template else "random",
        "knowledge": config.knowledge,
        "data": config.data,
        "answered": f"{len(log.records)} of {run.get('questions', '?')} questions",
        "skipped images (missing)": len(run.get("skipped_images", [])),
    }
    if config.shots == 0:
        del meta["template"]
    if score == "parsed":
        meta["reply parser"] = parser
    records = reparsed(log.records, parser)
    return ScoredRun(label=label or run_dir.name, scores=score_answers(records, score), meta=meta)


def report_run(
    run_dir: str | Path, score: ScoreSource = "readout", out_dir: str | Path | None = None, parser: str = "strict"
):
    """Score a run folder and write its report (into the run folder by default); returns (ScoredRun, ReportFiles)."""
    scored = load_scored_run(run_dir, score, parser=parser)
    return scored, write_run_report(scored, out_dir or run_dir)
