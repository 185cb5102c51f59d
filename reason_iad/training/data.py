"""Training examples for the tiny inspector, built from procedural SynthIAD images and their ground truth.

An `ImagePool` renders a training split once (seeds disjoint from evaluation). Each example is one MMAD question
about one image, in exactly the prompt the engine builds at inference (`reasoning.prompt.build_messages`):
zero- or one-shot, with or without the category's knowledge, with the visual memory's evidence line in most
examples (computed by the real memory, `training.evidence`), with or without the latent think-token slots; the
answer is the option phrase, often followed by a short rationale from the ground truth (defect type and region).
Retrieved knowledge is imitated in the order retrieval produces it (top defect entries, then the normal entry),
with the true defect ranked first at the rate `retrieval_top1_rate` and otherwise second or third (the tiny
retriever's measured top-1 / top-3 within a category).

So that the entries carry information the model needs, knowledge examples vary what the entries say: in a share
of them (`rename_rate`) every defect type of the category is renamed for that one example (a made-up name, a code
name, or another defect's title), consistently in the entries' title lines, the Defect Classification options and
the rationale, while the entries' visual descriptions stay; only reading the entries maps what the image shows to
the option text. In a share of the knowledge Defect Description questions (`paraphrase_rate`) the options are
the entries' own first sentences instead of the catalog's phrases.

Dynamic visual injection is imitated too: in a share of the examples with latent slots (`injection_rate`) a few
of the query image's merged tokens are copied into the latent suffix right after a latent, as the engine injects
patches (`Example.injected`; `training.inspector` copies the rows inside the forward). Most injected tokens lie on
the defect when there is one (`defect_patch_rate`), the rest anywhere, so the model learns that a patch on the
defect is evidence to be more certain about.
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
from reason_iad.training.knowledge_variants import paraphrase_question, rename_defects, rename_question, retitle

IMAGE_PAD = "<|image_pad|>"
LATENT = "<|latent|>"
END = "<|im_end|>"
IGNORE = -100
ANOMALY = "Anomaly Detection"
ANSWERED_SUBTASKS = (ANOMALY, "Defect Classification", "Defect Localization")  # a sentence can follow


@dataclass(frozen=True)
class DataRecipe:
    """How training examples are drawn (every rate is a probability per example or per batch)."""

    seed: int = 1000  # evaluation splits use other seeds (e.g. 7)
    normals_per_category: int = 80
    defects_per_category: int = 160
    templates_per_category: int = 8
    image_size: int = 224
    one_shot_rate: float = 0.7  # per batch
    knowledge_rate: float = 0.7  # per batch
    latent_rate: float = 0.5  # per batch
    evidence_rate: float = 0.8  # per example
    rationale_rate: float = 0.6  # per example
    num_latent_tokens: int = 4
    retrieval_top1_rate: float = 0.72  # retrieval-like knowledge: the true defect entry ranked first (else 2nd/3rd)
    all_entries_rate: float = 0.1  # knowledge examples with every entry in catalog order (MMAD's `all`)
    rename_rate: float = 0.35  # knowledge examples whose defect types are renamed (entries, options, rationale)
    permute_share: float = 0.3  # renamings that exchange the category's own titles (the rest: made-up or code names)
    single_entry_rate: float = 0.0  # retrieval-like lists on defective images holding only the true entry and normal
    latent_noise: float = 0.0  # latent rows get Gaussian noise of std up to this times the embedding RMS
    paraphrase_rate: float = 0.3  # knowledge Defect Description examples whose options are the entries' sentences
    injection_rate: float = 0.0  # latent examples with query-image tokens injected after latents
    injected_patches: int = 2  # at most this many per example (at least one)
    defect_patch_rate: float = 0.7  # on a defective image, each injected token lies on the defect at this rate
    answered_rationale_rate: float = 0.0  # rationale examples explaining a random (unsupervised) answer
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


def rationale(facts: SampleFacts, titles: dict[str, str] | None = None, answered: tuple[str, str] = ("", "")) -> str:
    """A short explanation from the ground truth: the defect type (renamed by `titles`) and where it is.

    It never opens with the answer's option text ("Found: <type> at the <region> of the <object>.").
    `answered` = (subtask, option text) of an answer already given: the sentence follows it (a "No." to Anomaly
    Detection reads normal, a Defect Classification answer is the type named, a Localization answer the place).
    """
    category = CATEGORIES[facts.category]
    subtask, text = answered
    if facts.defect is None or (subtask == ANOMALY and text.startswith("No")):
        return f"The {category.title.lower()} looks normal, no defect is visible."
    title = (titles or {}).get(facts.defect, category.defect(facts.defect).title)
    title = text if subtask == "Defect Classification" else title
    region = text.lower().rstrip(".") if subtask == "Defect Localization" else facts.region
    return f"Found: {title} at the {region} of the {category.title.lower()}."


def injected_cells(cells: np.ndarray, rng: np.random.Generator, most: int, defect_rate: float) -> list[int]:
    """Distinct query-image token indices to inject: 1..`most`, each on the defect (`cells` > 0) at `defect_rate`."""
    defect = [int(i) for i in np.flatnonzero(cells > 0)]
    chosen: list[int] = []
    for _ in range(int(rng.integers(1, most + 1))):
        pool = defect if defect and rng.random() < defect_rate else list(range(len(cells)))
        pool = [i for i in pool if i not in chosen] or [i for i in range(len(cells)) if i not in chosen]
        chosen.append(pool[int(rng.integers(len(pool)))])
    return chosen


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
    injected: list[tuple[int, int]] = field(default_factory=list)  # (position in ids, query image token index)


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
        titles: dict[str, str] | None = None,
    ) -> Example:
        """Encode one question about `item`; the evidence and rationale coin flips use `rng`.

        `titles` renames the defect types in the rationale (as the entries and options of this example do).
        """
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
        injected = []
        if plan.latents:
            slots, offsets = self.latent_slots(item, rng)
            injected = [(len(ids) + offset, cell) for offset, cell in offsets]
            ids += slots
        ids += encode(header, add_special_tokens=False)
        answer, labels = self.answer_tokens(question, item.facts, titles, rng)
        images = [template, item] if template else [item]
        return Example(ids + answer, [IGNORE] * len(ids) + labels, images, injected)

    def answer_tokens(
        self, question: MMADQuestion, facts: SampleFacts, titles, rng: np.random.Generator
    ) -> tuple[list[int], list[int]]:
        """(token ids, labels) of the answer phrase, the rationale in a share of examples, and the end token.

        In `answered_rationale_rate` of the rationale examples of the subtasks a sentence can follow, the answer is
        a random option, not supervised (its labels are ignored), and only the rationale that follows it is: the
        model learns that its explanation agrees with the answer it gave, right or wrong.
        """
        r, encode = self.recipe, self.tokenizer.encode
        letter, supervised = question.answer, True
        explain = rng.random() < r.rationale_rate
        eligible = question.type in ANSWERED_SUBTASKS and not (facts.defect is None and question.type == ANOMALY)
        if explain and eligible and rng.random() < r.answered_rationale_rate:
            letter, supervised = sorted(question.options)[int(rng.integers(len(question.options)))], False
        text = question.options[letter].strip()
        answer = encode(text, add_special_tokens=False)
        labels = list(answer) if supervised else [IGNORE] * len(answer)
        if explain:
            sentence = encode("\n" + rationale(facts, titles, (question.type, text)), add_special_tokens=False)
            answer, labels = answer + sentence, labels + sentence
        return answer + [self.end_id], labels + [self.end_id]

    def latent_slots(self, item: PoolImage, rng: np.random.Generator) -> tuple[list[int], list[tuple[int, int]]]:
        """The latent think-token slots, with injected patches after some latents at the recipe's rate.

        Returns:
            (token ids: a latent placeholder per latent and per injected patch, (offset in the slots, query image
            token index) per injected patch, in the engine's layout [z_1, patches of z_1..., z_2, ...]).
        """
        r = self.recipe
        attached: dict[int, list[int]] = {}
        if rng.random() < r.injection_rate:
            for cell in injected_cells(item.cells, rng, r.injected_patches, r.defect_patch_rate):
                attached.setdefault(int(rng.integers(r.num_latent_tokens)), []).append(cell)
        ids, offsets = [], []
        for latent in range(r.num_latent_tokens):
            ids.append(self.latent_id)
            for cell in attached.get(latent, []):
                offsets.append((len(ids), cell))
                ids.append(self.latent_id)  # a placeholder: the forward writes the image token's features here
        return ids, offsets


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
        return [text for _, text in self.knowledge_pairs(facts, rng)]

    def knowledge_pairs(self, facts: SampleFacts, rng: np.random.Generator) -> list[tuple[str, str]]:
        """`knowledge_for` as (defect, text) pairs.

        Retrieval-like lists rank the true defect first at `retrieval_top1_rate`, else second or third (the tiny
        retriever's top-3 within a category is nearly always right, its top-1 about 72 %). At `single_entry_rate`
        a defective image's list holds only its own entry and the normal one (the plainest case of reading).
        """
        pairs = self.pool.knowledge.get(facts.category, [])
        if rng.random() < self.recipe.all_entries_rate or len(pairs) < 2:
            return list(pairs)
        normal, defects = pairs[0], list(pairs[1:])
        own = [pair for pair in defects if pair[0] == facts.defect]
        if own and self.recipe.single_entry_rate and rng.random() < self.recipe.single_entry_rate:
            return [own[0], normal]
        order = [defects[i] for i in rng.permutation(len(defects))]
        true = [i for i, (defect, _) in enumerate(order) if defect == facts.defect]
        if true:
            entry = order.pop(true[0])
            hit = rng.random() < self.recipe.retrieval_top1_rate or len(order) == 0
            order.insert(0 if hit else 1 + int(rng.integers(min(2, len(order)))), entry)
        return order[:3] + [normal]

    def vary(
        self, question: MMADQuestion, facts: SampleFacts, pairs: list[tuple[str, str]], rng: np.random.Generator
    ) -> tuple[MMADQuestion, list[str], dict[str, str] | None]:
        """Rename the category's defect types (entries, options) or paraphrase Description options, by the recipe.

        Returns:
            (the question, the knowledge texts, the renaming applied, None when none).
        """
        titles = None
        if pairs and rng.random() < self.recipe.rename_rate:
            titles = rename_defects(facts.category, rng, self.recipe.permute_share)
            pairs = [(d, retitle(text, titles[d]) if d in titles else text) for d, text in pairs]
            question = rename_question(question, facts.category, titles, rng)
        if pairs and question.type == "Defect Description" and rng.random() < self.recipe.paraphrase_rate:
            question = paraphrase_question(question, self.pool.knowledge)
        return question, [text for _, text in pairs], titles

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
            pairs = self.knowledge_pairs(item.facts, rng) if plan.knowledge else []
            question, knowledge, titles = self.vary(question, item.facts, pairs, rng)
            examples.append(self.encoder.encode(item, question, plan, template, knowledge, rng, titles))
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
    inject = []  # (row, position written, position of the query image token copied)
    for row, e in enumerate(examples):
        query = torch.nonzero(ids[row] == image_token_id).flatten()[-len(e.images[-1].cells) :]
        inject += [(row, position, int(query[cell])) for position, cell in e.injected]
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
        "inject": torch.tensor(inject, dtype=torch.long).reshape(-1, 3),
    }
