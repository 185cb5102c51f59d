"""Answering MMAD questions: one item with its prompt aids, the items of a set, and one local model replica.

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


def answer_item(
    reasoner, item: EvalItem, image, template, knowledge: Sequence[str], aids=None, mask=None
) -> AnswerRecord:
    """Ask one question (fresh inspection, no history) and record both the read-out and the parsed letter.

    `aids` (a `PromptAids`) adds the visual memory's evidence and retrieved knowledge, when the run uses them.
    `mask` (bool [H, W] at the image's size), the ground truth of a defective image, adds the answer's grounding.
    """
    from reason_iad.eval.grounding import inspection_grounding
    from reason_iad.reasoning.engine import InspectionRequest

    started = time.perf_counter()
    extra = aids.for_image(item, image) if aids is not None else None
    if extra is not None:
        image = extra.image
        knowledge = extra.knowledge if extra.knowledge is not None else knowledge
    request = InspectionRequest(
        image=image,
        question=item.question,
        template=template,
        category=item.category,
        knowledge=tuple(knowledge),
        evidence=extra.evidence if extra else "",
        patch_prior=extra.patch_prior if extra else None,
    )
    inspection = reasoner.run(request)
    grounding = None if mask is None else inspection_grounding(mask, inspection, extra.anomaly if extra else None)
    return AnswerRecord(
        id=item.id,
        image=item.image,
        dataset=item.dataset,
        category=item.category,
        subtask=item.subtask,
        is_normal=item.is_normal,
        correct_answer=item.answer,
        readout_answer=inspection.answer,
        parsed_answer=parse_answer(inspection.rationale, item.question.options),
        readout=reasoner.config.readout,
        question_index=item.question_index,
        question=item.question.text,
        options=dict(item.question.options),
        reply=inspection.rationale,
        option_probs=dict(inspection.option_probs),
        template=item.template,
        seconds=round(time.perf_counter() - started, 4),
        grounding=grounding,
    )


def answer_items(reasoner, items: Sequence[EvalItem], knowledge: Knowledge, aids=None) -> Iterator[AnswerRecord]:
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
            reasoner,
            item,
            image,
            template,
            knowledge.get((item.dataset, item.category), ()),
            aids,
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
        self.aids = None

    def start(self) -> None:
        """Load the model (unless one was given) and build the visual memory / knowledge base the run uses."""
        from reason_iad.eval.aids import PromptAids
        from reason_iad.reasoning.engine import Reasoner

        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        if self.backend is None:
            from reason_iad.backends import load_backend

            self.backend = load_backend(self.config.backend)
        self.reasoner = Reasoner(self.backend, self.config.reasoning)
        self.aids = PromptAids.build(self.config, self.eval_set)

    def answers(self, items: Sequence[EvalItem]) -> Iterator[AnswerRecord]:
        """Answer the items in order."""
        return answer_items(self.reasoner, items, self.eval_set.knowledge, self.aids)

    def close(self) -> None:
        """Remove the run's temporary memory and knowledge base."""
        if self.aids is not None:
            self.aids.close()


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
