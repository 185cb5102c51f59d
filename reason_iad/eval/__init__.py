"""MMAD evaluation: reader, answer parser, scorer, reports, a resumable runner and Ray scale-out.

`run_eval(EvalRunConfig(data=...), run_dir)` asks every question once and writes `answers.jsonl` plus the report;
`score_answers(records)` scores answers; `parse_answer(reply, options)` reads a letter from a reply.
Ray is optional and imported only by `reason_iad.eval.distributed`.
"""

from reason_iad.eval.answers import AnswerRecord, AnswerWriter, read_answers
from reason_iad.eval.parse import parse_answer
from reason_iad.eval.reader import EvalItem, EvalSet, read_eval_set
from reason_iad.eval.run_config import EvalRunConfig
from reason_iad.eval.runner import EvalRunResult, load_scored_run, report_run, run_eval
from reason_iad.eval.score import EvalScores, score_answers

__all__ = [
    "AnswerRecord",
    "AnswerWriter",
    "EvalItem",
    "EvalRunConfig",
    "EvalRunResult",
    "EvalScores",
    "EvalSet",
    "load_scored_run",
    "parse_answer",
    "read_answers",
    "read_eval_set",
    "report_run",
    "run_eval",
    "score_answers",
]
