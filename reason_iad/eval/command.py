"""`reason-iad eval`: run (or resume) an MMAD evaluation; `reason-iad eval report`: score and compare runs.

reason-iad eval --data data/synth --mode full --shots 1 --out runs/full
reason-iad eval --data data/synth --mode plain --knowledge none --out runs/plain --ray --workers 2
reason-iad eval report runs/plain runs/full --out runs/compare
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reason_iad.cli_options import (
    SHARED_REASONING_FLAGS,
    add_model_options,
    add_reasoning_options,
    backend_from_args,
    reasoning_from_args,
)
from reason_iad.config import DEFAULT_MODEL, AppConfig, with_model_defaults
from reason_iad.errors import UserError
from reason_iad.eval.answers import SCORE_SOURCES
from reason_iad.eval.parse import PARSERS
from reason_iad.eval.run_config import KNOWLEDGE_MODES, EvalRunConfig

PARSER_HELP = (
    "how --score parsed reads a reply: mmad (MMAD's rules: the last standalone A-E, else the closest "
    "option text, so every reply gets a letter) or strict (default: offered letters only; a reply naming "
    "no option is unparseable)"
)


def register(subparsers) -> None:
    """Add the `eval` subcommand (and its `report` action)."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate on an MMAD-format dataset (resumable, Ray scale-out); 'eval report' compares runs",
        description="Ask every question of an MMAD-format dataset (ROOT/mmad.json, images relative to ROOT) once, "
        "append one JSON line per answer to RUN_DIR/answers.jsonl, resume where a run stopped, and write the "
        "report (scores.json, accuracy.csv in MMAD's columns, report.md, heatmap.html; grounding against the "
        "ground-truth masks in report.md, grounding.csv, grounding.html) into RUN_DIR.",
    )
    parser.add_argument("--data", metavar="ROOT", help="dataset folder holding mmad.json (or the JSON file)")
    parser.add_argument("--out", metavar="RUN_DIR", help="run folder: new, empty, or a run to resume")
    add_model_options(parser)
    add_reasoning_options(
        parser,
        (*SHARED_REASONING_FLAGS, "evidence", "prior", "prior_gate", "max_new_tokens", "rationale"),
        notes={
            "evidence": "(its bank per category: the dataset's normal templates; none when the file lists no "
            "template images)",
            "prior": "(attention when the file lists no template images)",
            "max_new_tokens": "(MMAD uses 128)",
            "rationale": "(continue/followup record an explanation, checked against the answer in the report, "
            "and leave nothing for --score parsed)",
        },
        defaults={"rationale": "reply"},
    )
    parser.add_argument(
        "--shots",
        type=int,
        choices=[0, 1],
        default=None,
        help="normal template images (default 1; 0 when the file lists no template images)",
    )
    parser.add_argument(
        "--similar-template",
        action="store_true",
        help="one-shot template: first similar_templates entry (default: first random_templates)",
    )
    parser.add_argument(
        "--knowledge",
        choices=KNOWLEDGE_MODES,
        default=None,
        help="all: every entry of the category in ROOT/domain_knowledge.json (MMAD); retrieved: the "
        "top-3 entries of a knowledge base made of that file, searched per image (see --clip), plus "
        "the normal entry; default: all for --mode knowledge/full, none otherwise",
    )
    parser.add_argument(
        "--clip",
        metavar="SPEC",
        default=None,
        help="image embedder of --knowledge retrieved: tiny_clip or open_clip:<arch>[:<weights>] "
        "(default: tiny_clip for the embedded model, else the question's meaning)",
    )
    parser.add_argument("--limit", type=_positive_int, help="ask only the first N questions (continue later)")
    parser.add_argument("--categories", metavar="A,B", help="comma-separated categories (name or dataset/name)")
    parser.add_argument("--subtasks", metavar="A,B", help="comma-separated subtasks, e.g. 'Anomaly Detection'")
    parser.add_argument("--skip-missing", action="store_true", help="skip (and count) images that are missing")
    parser.add_argument(
        "--score",
        choices=SCORE_SOURCES,
        default="readout",
        help="report the read-out letter (default) or the letter parsed from the reply",
    )
    parser.add_argument("--parser", choices=PARSERS, default=None, help=PARSER_HELP)
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=1,
        help="torch CPU threads (this process, or each Ray worker; default 1)",
    )
    parser.add_argument("--ray", action="store_true", help="answer with Ray workers (starts a local cluster)")
    parser.add_argument(
        "--ray-address", metavar="ADDR", help="join this Ray cluster ('auto', HOST:PORT); implies --ray"
    )
    parser.add_argument("--workers", type=_positive_int, help="Ray workers (default: one per GPU, or 2 on CPUs)")
    parser.add_argument("--gpus-per-worker", type=float, help="GPUs per Ray worker, fractions allowed (default 1/0)")
    parser.set_defaults(handler=run)
    actions = parser.add_subparsers(title="actions", metavar="ACTION", dest="eval_action")
    report = actions.add_parser(
        "report",
        help="score runs again and compare several side by side",
        description="Score RUN_DIR's answers and write its report into --out (default: RUN_DIR); with several runs, "
        "write comparison.md/.csv/.json/.html (the runs side by side, each run's settings) into --out.",
    )
    report.add_argument("runs", nargs="+", metavar="RUN_DIR")
    report.add_argument("--out", dest="report_out", metavar="DIR", help="report folder (required for several runs)")
    report.add_argument("--score", dest="report_score", choices=SCORE_SOURCES, default="readout")
    report.add_argument("--parser", dest="report_parser", choices=PARSERS, default=None, help=PARSER_HELP)
    report.set_defaults(handler=run_report)
    retrieval = actions.add_parser(
        "retrieval",
        help="measure image -> knowledge retrieval on a dataset's defective images",
        description="For each defective image of ROOT, rank the entries of ROOT/domain_knowledge.json by the image "
        "retriever (through the visual memory's focus crop unless --no-focus) and report how often the true "
        "defect entry is in the top k: among all categories' entries and within the image's category.",
    )
    retrieval.add_argument("--data", dest="retrieval_data", required=True, metavar="ROOT")
    retrieval.add_argument(
        "--clip",
        dest="retrieval_clip",
        default="tiny_clip",
        metavar="SPEC",
        help="tiny_clip (default) or open_clip:<arch>[:<weights>]",
    )
    retrieval.add_argument("--k", dest="retrieval_k", type=_positive_int, default=3)
    retrieval.add_argument(
        "--no-focus", dest="retrieval_focus", action="store_false", help="embed the whole image (no visual memory crop)"
    )
    retrieval.add_argument(
        "--threads", dest="retrieval_threads", type=_positive_int, default=1, help="torch CPU threads (default 1)"
    )
    retrieval.set_defaults(handler=run_retrieval)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text}")
    return value


def _to_stderr(line: str) -> None:
    print(f"reason-iad: {line}", file=sys.stderr)


@dataclass(frozen=True)
class DataDefaults:
    """What the flags a user left unset default to, for the model and the data."""

    shots: int
    evidence: str
    prior: str
    retriever: str
    note: str = ""  # the line saying which defaults the data changed ("" when none)


def data_defaults(args: argparse.Namespace, embedded: bool) -> DataDefaults:
    """The model's defaults, or, for an MMAD file that lists no template image, zero-shot without the memory.

    The visual memory (evidence, anomaly prior, image retrieval's focus crop) is built from the templates, so a
    file without any (a peer's Anomaly Detection questions, say) defaults to what it can run. Given flags win.
    """
    from reason_iad.eval.reader import lists_templates

    usual = DataDefaults(1, "text", "mix", "tiny_clip") if embedded else DataDefaults(1, "none", "attention", "")
    bare = DataDefaults(0, "none", "attention", "")
    unset = {
        "shots": args.shots,
        "evidence": args.evidence,
        "prior": args.prior,
        "retriever": args.clip if args.knowledge == "retrieved" else "",
    }
    follows = [name for name, given in unset.items() if given is None and getattr(usual, name) != getattr(bare, name)]
    if not follows or lists_templates(args.data):
        return usual
    flags = {
        "shots": "--shots 0",
        "evidence": "--evidence none",
        "prior": "--prior attention",
        "retriever": "no --clip (retrieval by the question)",
    }
    return dataclasses.replace(
        bare,
        note=f"{args.data} lists no template images, so this run is zero-shot without "
        f"the visual memory: {', '.join(flags[name] for name in follows)}",
    )


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def build_config(args: argparse.Namespace, note: Callable[[str], None] = _to_stderr) -> EvalRunConfig:
    """The run configuration from the flags (validated); `note` gets the line saying a default followed the data."""
    if not args.data or not args.out:
        raise UserError("eval needs --data ROOT and --out RUN_DIR (or use 'reason-iad eval report RUN_DIR')")
    data = Path(args.data).expanduser()
    if not data.exists():
        raise UserError(f"data root not found: {data}")
    embedded = args.model == DEFAULT_MODEL
    defaults = data_defaults(args, embedded)
    if defaults.note:
        note(defaults.note)
    backend = backend_from_args(args)
    model_defaults = with_model_defaults(AppConfig(backend=backend)).reasoning
    base = dataclasses.replace(
        model_defaults,
        evidence=defaults.evidence,
        injection_prior=defaults.prior,
        rationale="reply",  # the free reply MMAD's protocol parses (`--score parsed`), not an explanation
    )
    reasoning = reasoning_from_args(args, base)
    knowledge = args.knowledge or ("all" if reasoning.uses_knowledge else "none")
    if args.clip and knowledge != "retrieved":
        raise UserError("--clip chooses the retriever of --knowledge retrieved; add --knowledge retrieved")
    retriever = (args.clip or defaults.retriever) if knowledge == "retrieved" else ""
    return EvalRunConfig.of(
        str(data.resolve()),
        backend,
        reasoning,
        retriever,
        shots=defaults.shots if args.shots is None else args.shots,
        similar_template=args.similar_template,
        knowledge=knowledge,
        categories=_names(args.categories),
        subtasks=_names(args.subtasks),
        skip_missing=args.skip_missing,
    )


def build_cluster(args: argparse.Namespace):
    """The Ray settings, or None for an in-process run."""
    if not (args.ray or args.ray_address):
        if args.workers or args.gpus_per_worker is not None:
            raise UserError("--workers and --gpus-per-worker need --ray (or --ray-address)")
        return None
    from reason_iad.eval.distributed import ClusterConfig

    return ClusterConfig(
        address=args.ray_address,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        threads_per_worker=args.threads or 1,
    )


def run(args: argparse.Namespace) -> int:
    """Handler of `eval`."""
    from reason_iad.eval.runner import run_eval

    parser = _parser(args.parser, args.score)
    config = build_config(args)
    cluster = build_cluster(args)
    result = run_eval(
        config,
        args.out,
        limit=args.limit,
        cluster=cluster,
        score=args.score,
        parser=parser,
        threads=None if cluster else args.threads,
    )
    resumed = f" (resumed: {result.answered_before} already answered)" if result.answered_before else ""
    where = f"{result.workers} Ray workers" if cluster else "1 process"
    print(
        f"answered {result.answered_now} of {result.planned} questions{resumed} with {where}; "
        f"{result.questions_per_second:.2f} questions/s"
    )
    if result.skipped_images:
        print(f"skipped {len(result.skipped_images)} missing images (listed in {Path(args.out) / 'run.json'})")
    print(result.report.markdown)
    print(f"report: {Path(args.out).resolve()}")
    return 0


def _parser(parser: str | None, score: str) -> str:
    """The reply parser; naming one only matters when the parsed letter is scored."""
    if parser is not None and score != "parsed":
        raise UserError("--parser chooses how --score parsed reads replies; add --score parsed")
    return parser or "strict"


def _labels(runs: list[str]) -> list[str]:
    names = [Path(r).resolve().name for r in runs]
    return [name if names.count(name) == 1 else f"{name} ({i + 1})" for i, name in enumerate(names)]


def run_report(args: argparse.Namespace) -> int:
    """Handler of `eval report`."""
    from reason_iad.eval.report import write_comparison, write_run_report
    from reason_iad.eval.runner import load_scored_run

    if len(args.runs) > 1 and not args.report_out:
        raise UserError("comparing several runs needs --out DIR")
    parser = _parser(args.report_parser, args.report_score)
    scored = [
        load_scored_run(run, args.report_score, label, parser)
        for run, label in zip(args.runs, _labels(args.runs), strict=True)
    ]
    if len(scored) == 1:
        files = write_run_report(scored[0], args.report_out or args.runs[0])
    else:
        files = write_comparison(scored, args.report_out)
    print(files.markdown)
    print(f"report: {Path(files.paths[0]).parent.resolve()}")
    return 0


def run_retrieval(args: argparse.Namespace) -> int:
    """Handler of `eval retrieval`."""
    import sys

    import torch

    from reason_iad.eval.retrieval import evaluate_retrieval

    torch.set_num_threads(args.retrieval_threads)
    report = evaluate_retrieval(
        args.retrieval_data,
        args.retrieval_clip,
        args.retrieval_k,
        args.retrieval_focus,
        progress=lambda line: print(line, file=sys.stderr),
    )
    print(report.markdown())
    return 0
