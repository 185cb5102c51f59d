"""Training with injected patches: which image tokens are chosen, where they sit, and that the forward copies them."""

import numpy as np
import pytest
import torch

from reason_iad.mmad import MMADQuestion
from reason_iad.synth.render import render_sample
from reason_iad.training.data import (
    BatchPlan,
    DataRecipe,
    ExampleEncoder,
    PoolImage,
    collate,
    injected_cells,
)
from reason_iad.training.inspector import IMAGE_TOKENS, Inspector, build_model
from reason_iad.training.tokenizer import train_tokenizer

DEFECT_CELLS = np.array([0] * 5 + [3, 3] + [0] * 9)  # tokens 5 and 6 lie on the defect


def test_injected_tokens_lie_on_the_defect_at_the_rate_and_are_distinct():
    rng = np.random.default_rng(0)
    on_defect = [injected_cells(DEFECT_CELLS, rng, 1, 1.0) in ([5], [6]) for _ in range(50)]
    assert all(on_defect)
    draws = [injected_cells(DEFECT_CELLS, rng, 3, 0.7) for _ in range(400)]
    assert all(1 <= len(d) <= 3 and len(set(d)) == len(d) for d in draws)
    share = np.mean([c in (5, 6) for d in draws for c in d])
    assert 0.6 < share < 0.85  # 0.7 on the defect, plus random picks that land there
    never = [injected_cells(DEFECT_CELLS, rng, 1, 0.0)[0] for _ in range(400)]
    assert np.mean([c in (5, 6) for c in never]) < 0.25  # 2 of 16 tokens by chance
    normal = [injected_cells(np.zeros(16, dtype=np.int64), rng, 2, 1.0) for _ in range(20)]
    assert all(1 <= len(d) <= 2 for d in normal)  # no defect: anywhere


@pytest.fixture(scope="module")
def parts():
    tokenizer = train_tokenizer()
    model, processor = build_model(tokenizer, seed=0)
    return tokenizer, model, processor


def _example(processor, injection_rate: float, seed: int = 0):
    recipe = DataRecipe(evidence_rate=0.0, rationale_rate=0.0, injection_rate=injection_rate, injected_patches=2)
    encoder = ExampleEncoder(processor, recipe, IMAGE_TOKENS)
    sample = render_sample("pill", "crack", 3, 224)
    item = PoolImage(sample.image, sample.facts, DEFECT_CELLS)
    item.pixels = processor.image_processor(images=[item.image], return_tensors="pt")["pixel_values"].half()
    question = MMADQuestion(
        Question="Is there any defect in the object?",
        Options={"A": "Yes.", "B": "No."},
        Answer="A",
        type="Anomaly Detection",
    )
    example = encoder.encode(item, question, BatchPlan(False, False, True), None, [], np.random.default_rng(seed))
    return example, encoder


def test_injected_patches_sit_after_a_latent_in_the_engines_layout(parts):
    tokenizer, _, processor = parts
    example, encoder = _example(processor, injection_rate=1.0)
    latent = encoder.latent_id
    slots = [i for i, t in enumerate(example.ids) if t == latent]
    assert 1 <= len(example.injected) <= 2 and len(slots) == encoder.recipe.num_latent_tokens + len(example.injected)
    assert slots == list(range(slots[0], slots[0] + len(slots)))  # one block: latents with their patches
    assert slots[0] not in {position for position, _ in example.injected}  # a latent comes first
    assert tokenizer.decode(example.ids[slots[-1] + 1 :]).startswith("<|im_end|>\n<|im_start|>assistant")
    assert all(example.labels[p] == -100 for p, _ in example.injected)
    plain, _ = _example(processor, injection_rate=0.0)
    assert not plain.injected and sum(t == latent for t in plain.ids) == encoder.recipe.num_latent_tokens


def test_the_forward_writes_the_query_tokens_features_into_the_slots(parts):
    tokenizer, model, processor = parts
    example, _ = _example(processor, injection_rate=1.0)
    batch = collate([example], tokenizer.pad_token_id, model.config.image_token_id)
    module = Inspector(model)
    seen = []
    model.model.language_model.register_forward_hook(
        lambda _m, _a, kwargs, _out: seen.append(kwargs["inputs_embeds"].detach()), with_kwargs=True
    )
    with torch.no_grad():
        module(batch)
        embeds = seen[-1][0]
        image_rows = torch.nonzero(batch["input_ids"][0] == model.config.image_token_id).flatten()
        for position, cell in example.injected:
            assert torch.equal(embeds[position], embeds[image_rows[cell]])
        latent_row = embeds[[i for i, t in enumerate(example.ids) if t == example.ids[example.injected[0][0]]][0]]
        assert not torch.equal(embeds[example.injected[0][0]], latent_row)  # written, not the placeholder
        module(batch | {"inject": torch.zeros(0, 3, dtype=torch.long)})
        assert torch.equal(seen[-1][0][example.injected[0][0]], latent_row)  # no injection: placeholder stays


def test_latent_noise_moves_only_the_latent_rows_and_only_in_training(parts):
    tokenizer, model, processor = parts
    example, encoder = _example(processor, injection_rate=1.0)
    batch = collate([example], tokenizer.pad_token_id, model.config.image_token_id)
    seen = []
    handle = model.model.language_model.register_forward_hook(
        lambda _m, _a, kwargs, _out: seen.append(kwargs["inputs_embeds"].detach()[0]), with_kwargs=True
    )
    ids = batch["input_ids"][0]
    latent = ids == encoder.latent_id
    patches = torch.zeros_like(latent)
    patches[[position for position, _ in example.injected]] = True
    try:
        with torch.no_grad():
            module = Inspector(model, encoder.latent_id, latent_noise=0.3)  # one module: hooks add up per module
            module.eval()(batch)
            module.train()(batch)
            module.eval()(batch)
    finally:
        handle.remove()
    clean, noisy, evaluated = seen[-3:]  # eval, train, eval again
    moved = (noisy - clean).abs().amax(dim=-1) > 0  # [S]
    assert torch.equal(moved, latent & ~patches)  # every latent row moves, nothing else (patches: exact copies)
    rms = model.get_input_embeddings().weight.float().pow(2).mean().sqrt()
    assert (noisy - clean)[moved].float().pow(2).mean().sqrt() < 0.3 * rms
    assert torch.equal(evaluated, clean)  # no noise outside training
