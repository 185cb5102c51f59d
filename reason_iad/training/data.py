"""Training examples for the tiny inspector, built from procedural SynthIAD images and their ground truth.

An `ImagePool` renders a training split once (seeds disjoint from evaluation). Each example is one MMAD question
about one image, in exactly the prompt the engine builds at inference (`reasoning.prompt.build_messages`):
zero- or one-shot, with or without the category's knowledge, with the visual memory's evidence line in most
examples (computed by the real memory, `training.evidence`), with or without the latent think-token slots; the
answer is the option phrase, often followed by a short rationale from the ground truth (defect type and region).
Retrieved knowledge is imitated in the order retrieval produces it (top defect entries, then the normal entry),
with the true defect ranked first at the rate `retrieval_top1_rate`.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from reason_iad.knowledge.seed import load_seed_file
from reason_iad.mmad import MMADQuestion
from reason_iad.reasoning.prompt import Question, build_messages
from reason_iad.synth.catalog import CATEGORIES, NORMAL
from reason_iad.synth.questions import AnswerSlots, build_conversation
from reason_iad.synth.render import SampleFacts, render_sample, sample_rng
from reason_iad.synth.writer import KNOWLEDGE_FILE

IMAGE_PAD = "<|image_pad|>"
LATENT = "<|latent|>"
END = "<|im_end|>"
IGNORE = -100


@dataclass(frozen=True)
class DataRecipe:
    """How training examples are drawn (every rate is a probability per example or per batch)."""

    seed: int = 1000  # evaluation splits use other seeds (e.g. 7)
    normals_per_category: int = 80
    defects_per_category: int = 160
    templates_per_category: int = 8
    image_size: int = 224
    one_shot_rate: float = 0.7  # per batch
    knowledge_rate: float = 0.2  # per batch
    latent_rate: float = 0.5  # per batch
    evidence_rate: float = 0.8  # per example
    rationale_rate: float = 0.6  # per example
    num_latent_tokens: int = 4
    retrieval_top1_rate: float = 0.5  # retrieval-like knowledge: the true defect entry ranked first
    subtask_weights: tuple[tuple[str, float], ...] = ()  # e.g. (("Anomaly Detection", 4.0),); others weigh 1


@dataclass
class PoolImage:
    """One rendered training image with its ground truth and its defect-cell map (for the auxiliary head)."""

    image: Image.Image
    facts: SampleFacts
    cells: np.ndarray  # [g*g] defect class per merged image token (0 = normal)
    pixels: torch.Tensor | None = None  # processor output, fp16
    evidence: str = ""  # the visual memory's line for this image (`training.evidence.pool_evidence`)


@dataclass
class ImagePool:
    """The training split: per category, normal and defective images plus normal templates."""

    images: list[PoolImage]
    templates: dict[str, list[PoolImage]]
    knowledge: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # category -> (defect, text), good first


def defect_classes() -> list[tuple[str, str]]:
    """Global (category, defect) classes of the auxiliary head; index 0 is "normal"."""
    return [("", NORMAL)] + [(c.name, d) for c in CATEGORIES.values() for d in c.defect_names]


def _cells(mask: Image.Image, label: int, grid: int) -> np.ndarray:
    """Per grid cell: `label` where the mask covers more than 2 % of the cell, else 0."""
    cover = np.asarray(mask.resize((grid, grid), Image.BOX), dtype=np.float32) / 255.0
    return np.where(cover.ravel() > 0.02, label, 0).astype(np.int64)


def render_pool(recipe: DataRecipe, grid: int = 4, progress=None) -> ImagePool:
    """Render the training images (deterministic for the recipe's seed)."""
    classes = {key: i for i, key in enumerate(defect_classes())}
    images, templates = [], {}
    jobs = []
    for category in CATEGORIES.values():
        jobs += [(category.name, None, i, "template") for i in range(recipe.templates_per_category)]
        jobs += [(category.name, None, i, "normal") for i in range(recipe.normals_per_category)]
        names = category.defect_names
        jobs += [(category.name, names[i % len(names)], i, "defect") for i in range(recipe.defects_per_category)]
    for done, (category, defect, index, kind) in enumerate(jobs):
        sample = render_sample(category, defect, sample_rng(recipe.seed, category, index, kind), recipe.image_size)
        label = classes[(category, defect)] if defect else 0
        item = PoolImage(sample.image, sample.facts, _cells(sample.mask, label, grid))
        (templates.setdefault(category, []) if kind == "template" else images).append(item)
        if progress:
            progress(done + 1, len(jobs))
    return ImagePool(images, templates, knowledge_texts())


def knowledge_texts() -> dict[str, list[tuple[str, str]]]:
    """The SynthIAD seed knowledge per category as (defect, MMAD text) pairs, the normal ("good") entry first."""
    out: dict[str, list[tuple[str, str]]] = {}
    for entry in load_seed_file(KNOWLEDGE_FILE):
        texts = out.setdefault(entry.category, [])
        pair = (entry.defect, entry.mmad_text)
        texts.insert(0, pair) if entry.defect == NORMAL else texts.append(pair)
    return out


def rationale(facts: SampleFacts) -> str:
    """A short explanation from the ground truth: the defect type and where it is, or that all looks normal."""
    category = CATEGORIES[facts.category]
    if facts.defect is None:
        return f"The {category.title.lower()} looks normal, no defect is visible."
    return f"{category.defect(facts.defect).title} at the {facts.region} of the {category.title.lower()}."


@dataclass(frozen=True)
class BatchPlan:
    """Per-batch prompt settings (one prompt shape per batch keeps padding small)."""

    one_shot: bool
    knowledge: bool
    latents: bool


@dataclass
class Example:
    """One encoded example: token ids, answer-only labels and the images in prompt order."""

    ids: list[int]
    labels: list[int]
    images: list[PoolImage]


class ExampleEncoder:
    """Turns (image, question, plan) into token ids exactly as the backend renders prompts at inference."""

    def __init__(self, processor, recipe: DataRecipe, image_tokens: int) -> None:
        """Keep the processor (chat template + tokenizer) and the per-image token count."""
        self.processor, self.recipe, self.image_tokens = processor, recipe, image_tokens
        self.tokenizer = processor.tokenizer
        self.end_id = self.tokenizer.convert_tokens_to_ids(END)
        self.latent_id = self.tokenizer.convert_tokens_to_ids(LATENT)

    def _render(self, messages) -> tuple[str, str]:
        from reason_iad.backends.transformers_backend import TransformersBackend

        prefix, header, _ = TransformersBackend.render(types.SimpleNamespace(processor=self.processor), messages)
        return prefix.replace(IMAGE_PAD, IMAGE_PAD * self.image_tokens), header

    def encode(
        self,
        item: PoolImage,
        question: MMADQuestion,
        plan: BatchPlan,
        template: PoolImage | None,
        knowledge: list[str],
        rng: np.random.Generator,
    ) -> Example:
        """Encode one question about `item`; the evidence and rationale coin flips use `rng`."""
        options = tuple(sorted(question.options.items()))
        evidence = item.evidence if rng.random() < self.recipe.evidence_rate else ""
        messages = build_messages(
            Question(question.question, options),
            item.image,
            template.image if template else None,
            knowledge,
            evidence=evidence,
        )
        prefix, header = self._render(messages)
        encode = self.tokenizer.encode
        ids = encode(prefix, add_special_tokens=False)
        if plan.latents:
            ids += [self.latent_id] * self.recipe.num_latent_tokens
        ids += encode(header, add_special_tokens=False)
        answer = encode(question.options[question.answer].strip(), add_special_tokens=False)
        if rng.random() < self.recipe.rationale_rate:
            answer += encode("\n" + rationale(item.facts), add_special_tokens=False)
        answer.append(self.end_id)
        images = [template, item] if template else [item]
        return Example(ids + answer, [IGNORE] * len(ids) + answer, images)


class ExampleSampler:
    """Deterministic batches: batch `step` depends only on (seed, step), so a resumed run sees the same data."""

    def __init__(self, pool: ImagePool, encoder: ExampleEncoder, recipe: DataRecipe) -> None:
        """Index the pool by category for template draws."""
        self.pool, self.encoder, self.recipe = pool, encoder, recipe

    def plan(self, rng: np.random.Generator) -> BatchPlan:
        """Draw the prompt shape of one batch."""
        r = self.recipe
        return BatchPlan(rng.random() < r.one_shot_rate, rng.random() < r.knowledge_rate, rng.random() < r.latent_rate)

    def knowledge_for(self, facts: SampleFacts, rng: np.random.Generator) -> list[str]:
        """All of the category's entries (MMAD's mode) or what retrieval returns: 3 defect entries, then good."""
        pairs = self.pool.knowledge.get(facts.category, [])
        if rng.random() < 0.5 or len(pairs) < 2:
            return [text for _, text in pairs]
        normal, defects = pairs[0], list(pairs[1:])
        order = [defects[i] for i in rng.permutation(len(defects))]
        true = [i for i, (defect, _) in enumerate(order) if defect == facts.defect]
        if true and rng.random() < self.recipe.retrieval_top1_rate:
            order.insert(0, order.pop(true[0]))
        elif true and true[0] == 0 and len(order) > 1:  # a miss: the true entry ranked lower
            order.insert(1 + int(rng.integers(len(order) - 1)), order.pop(0))
        return [text for _, text in order[:3]] + [normal[1]]

    def _pick(self, questions: list[MMADQuestion], rng: np.random.Generator) -> int:
        weights = dict(self.recipe.subtask_weights)
        if not weights:
            return int(rng.integers(len(questions)))
        p = np.array([weights.get(q.type, 1.0) for q in questions])
        return int(rng.choice(len(questions), p=p / p.sum()))

    def batch(self, step: int, size: int) -> list[Example]:
        """The examples of training step `step`."""
        rng = np.random.default_rng([self.recipe.seed, 7, step])
        plan = self.plan(rng)
        slots = AnswerSlots(int(rng.integers(1 << 31)))
        examples = []
        for _ in range(size):
            item = self.pool.images[int(rng.integers(len(self.pool.images)))]
            questions = build_conversation(item.facts, rng, slots)
            question = questions[self._pick(questions, rng)]
            template = None
            if plan.one_shot:
                candidates = self.pool.templates[item.facts.category]
                template = candidates[int(rng.integers(len(candidates)))]
            knowledge = self.knowledge_for(item.facts, rng) if plan.knowledge else []
            examples.append(self.encoder.encode(item, question, plan, template, knowledge, rng))
        return examples


def collate(examples: list[Example], pad_id: int, image_token_id: int) -> dict:
    """Right-padded tensors for a batch plus the images' pixel values and grids in prompt order."""
    width = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full_like(ids, IGNORE)
    mask = torch.zeros_like(ids)
    for row, e in enumerate(examples):
        ids[row, : len(e.ids)] = torch.tensor(e.ids)
        labels[row, : len(e.labels)] = torch.tensor(e.labels)
        mask[row, : len(e.ids)] = 1
    images = [image for e in examples for image in e.images]
    pixels = torch.cat([image.pixels.float() for image in images])
    grid = int(images[0].pixels.shape[0] ** 0.5)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": labels,
        "pixel_values": pixels,
        "image_grid_thw": torch.tensor([[1, grid, grid]] * len(images)),
        "mm_token_type_ids": (ids == image_token_id).long(),
        "cells": torch.from_numpy(np.concatenate([image.cells for image in images])),
    }
