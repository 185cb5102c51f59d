"""Answering MMAD questions through the run's `Pipeline`: one item, the items of a set, one local model replica.

Shared by the local run (`runner.py`) and the Ray workers (`distributed.py`), so both answer exactly alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from reason_iad.eval.answers import AnswerRecord
from reason_iad.eval.parse import parse_answer
from reason_iad.eval.reader import EvalItem, EvalSet, read_eval_set
from reason_iad.eval.run_config import EvalRunConfig

Knowledge = Mapping[tuple[str, str], tuple[str, ...]]


def answer_item(pipeline, item: EvalItem, image, template, knowledge: Sequence[str], mask=None) -> AnswerRecord:
    """Ask one question through the run's `Pipeline` (fresh inspection, no history); record read-out and reply.

    `knowledge` holds the dataset's entries for the category (`--knowledge all`); with a knowledge base in the
    pipeline (`--knowledge retrieved`) the entries are retrieved instead. `mask` (bool [H, W] at the image's size),
    the ground truth of a defective image, adds the answer's grounding.
    """
    from reason_iad.eval.grounding import inspection_grounding

    started = time.perf_counter()
    inspection, anomaly = inspect_item(pipeline, item, image, template, knowledge)
    grounding = None if mask is None else inspection_grounding(mask, inspection, anomaly)
    explained = pipeline.config.reasoning.rationale in ("continue", "followup")  # else the reply MMAD parses
    reply = "" if explained else inspection.rationale
    return AnswerRecord(
        id=item.id,
        image=item.image,
        dataset=item.dataset,
        category=item.category,
        subtask=item.subtask,
        is_normal=item.is_normal,
        correct_answer=item.answer,
        readout_answer=inspection.answer,
        parsed_answer=parse_answer(reply, item.question.options),
        readout=pipeline.config.reasoning.readout,
        question_index=item.question_index,
        question=item.question.text,
        options=dict(item.question.options),
        reply=reply,
        rationale=inspection.rationale if explained else "",
        option_probs=dict(inspection.option_probs),
        template=item.template,
        seconds=round(time.perf_counter() - started, 4),
        grounding=grounding,
    )


def inspect_item(pipeline, item: EvalItem, image, template, knowledge: Sequence[str]):
    """The `Inspection` of one question and the visual memory's `AnomalyEvidence` (None without a memory)."""
    from reason_iad.types import Inspection, ReasoningStep

    anomaly, inspection = None, None
    for event in pipeline.inspect_stream(
        image,
        question=item.question,
        category=item.category,
        dataset=item.dataset,
        template=template,
        knowledge_texts=None if pipeline.store is not None else tuple(knowledge),
    ):
        if isinstance(event, Inspection):
            inspection = event
        elif not isinstance(event, ReasoningStep):
            anomaly = event
    return inspection, anomaly


def answer_items(pipeline, items: Sequence[EvalItem], knowledge: Knowledge) -> Iterator[AnswerRecord]:
    """Answer questions in order, reading each image (and template) once for its consecutive questions."""
    from reason_iad.eval.masks import load_mask
    from reason_iad.images import load_image

    loaded: dict[Path, object] = {}
    masks: dict[Path, object] = {}
    for item in items:
        wanted = [p for p in (item.image_path, item.template_path) if p is not None]
        if any(p not in loaded for p in wanted):
            loaded = {p: loaded[p] if p in loaded else load_image(p, str(p)) for p in wanted}
        image = loaded[item.image_path]
        if item.mask_path is not None and item.mask_path not in masks:
            masks = {item.mask_path: load_mask(item.mask_path, image.size)}
        template = loaded[item.template_path] if item.template_path is not None else None
        yield answer_item(
            pipeline,
            item,
            image,
            template,
            knowledge.get((item.dataset, item.category), ()),
            masks.get(item.mask_path) if item.mask_path is not None else None,
        )


def shard_by_image(items: Sequence[EvalItem]) -> list[tuple[EvalItem, ...]]:
    """Consecutive questions of the same image grouped together (the unit of work for a worker)."""
    shards: list[list[EvalItem]] = []
    for item in items:
        if shards and shards[-1][0].image == item.image:
            shards[-1].append(item)
        else:
            shards.append([item])
    return [tuple(shard) for shard in shards]


class LocalAnswerer:
    """Answers in this process with one model."""

    workers = 1

    def __init__(self, config: EvalRunConfig, eval_set: EvalSet, backend=None, threads: int | None = None):
        self.config, self.eval_set, self.backend, self.threads = config, eval_set, backend, threads
        self.run = None

    def start(self) -> None:
        """Load the model (unless one was given) and build the run's `Pipeline` (memory, knowledge base)."""
        from reason_iad.eval.aids import open_run_pipeline

        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        self.run = open_run_pipeline(self.config, self.eval_set, self.backend)

    def answers(self, items: Sequence[EvalItem]) -> Iterator[AnswerRecord]:
        """Answer the items in order."""
        return answer_items(self.run.pipeline, items, self.eval_set.knowledge)

    def close(self) -> None:
        """Remove the run's temporary memory and knowledge base."""
        if self.run is not None:
            self.run.close()


def read_set(config: EvalRunConfig) -> EvalSet:
    """The run's questions, as its configuration selects them."""
    return read_eval_set(
        config.data,
        shots=config.shots,
        similar_template=config.similar_template,
        knowledge=config.knowledge,
        categories=config.categories,
        subtasks=config.subtasks,
        skip_missing=config.skip_missing,
    )
