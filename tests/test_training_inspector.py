"""Training pieces: the schedule, the examples' layout, and (slow) a short run from scratch lowering the loss."""

import json

import numpy as np
import pytest

from reason_iad.training.data import IGNORE, BatchPlan, DataRecipe, ExampleEncoder, knowledge_texts
from reason_iad.training.inspector import IMAGE_TOKENS, TrainSettings, build_model, learning_rate
from reason_iad.training.tokenizer import train_tokenizer


def test_learning_rate_warms_up_then_decays_with_time():
    settings = TrainSettings(minutes=1.0, learning_rate=1e-3, warmup_steps=10, final_lr_fraction=0.05)
    assert learning_rate(settings, 0, 0.0) == pytest.approx(1e-4)
    assert learning_rate(settings, 50, 0.0) == pytest.approx(1e-3)
    assert learning_rate(settings, 50, 30.0) == pytest.approx(1e-3 * (0.05 + 0.95 * 0.5))
    assert learning_rate(settings, 50, 600.0) == pytest.approx(5e-5)


def test_example_supervises_only_the_answer_and_matches_the_inference_prompt():
    from reason_iad.mmad import MMADQuestion
    from reason_iad.synth.render import render_sample
    from reason_iad.training.data import PoolImage

    tokenizer = train_tokenizer()
    _, processor = build_model(tokenizer, seed=0)
    recipe = DataRecipe(evidence_rate=1.0, rationale_rate=0.0)
    encoder = ExampleEncoder(processor, recipe, IMAGE_TOKENS)
    sample = render_sample("pill", "crack", 3, 224)
    item = PoolImage(
        sample.image,
        sample.facts,
        np.zeros(16, dtype=np.int64),
        evidence="verdict: anomalous; most anomalous region: top, score 0.91",
    )
    question = MMADQuestion(
        Question="Is there any defect in the object?",
        Options={"A": "Yes.", "B": "No."},
        Answer="A",
        type="Anomaly Detection",
    )
    knowledge = [text for _, text in knowledge_texts()["pill"]]
    example = encoder.encode(item, question, BatchPlan(False, True, True), None, knowledge, np.random.default_rng(0))
    answer = [t for t in example.labels if t != IGNORE]
    assert tokenizer.decode(answer) == "Yes.<|im_end|>"
    text = tokenizer.decode(example.ids)
    assert text.count("<|image_pad|>") == IMAGE_TOKENS and text.count("<|latent|>") == recipe.num_latent_tokens
    assert "Visual memory evidence: verdict: anomalous; most anomalous region: top" in text
    assert "Description:" in text
    assert text.index("<|latent|>") < text.index("<|im_start|>assistant")


@pytest.mark.slow
def test_short_training_from_scratch_lowers_the_loss(tmp_path):
    from reason_iad.training.inspector import train_inspector

    recipe = DataRecipe(normals_per_category=2, defects_per_category=4, templates_per_category=2)
    settings = TrainSettings(minutes=10, max_steps=40, warmup_steps=5, batch_size=4)
    summary = train_inspector(tmp_path, settings, recipe)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "loss.jsonl").read_text().splitlines()]
    assert summary["steps"] == 40 and (tmp_path / "model" / "model.safetensors").is_file()
    assert np.mean(losses[-8:]) < 0.7 * np.mean(losses[:4])


def test_retrieval_like_knowledge_ranks_defects_then_the_normal_entry():
    from reason_iad.synth.render import render_sample
    from reason_iad.training.data import ExampleSampler, ImagePool

    pool = ImagePool([], {}, knowledge_texts())
    facts = render_sample("carpet", "cut", 3, 96).facts
    pairs = dict(knowledge_texts()["carpet"])  # normal + 4 defect entries
    firsts = []
    for seed in range(200):
        texts = ExampleSampler(pool, None, DataRecipe(retrieval_top1_rate=0.7)).knowledge_for(
            facts, np.random.default_rng(seed)
        )
        if len(texts) == len(pairs):  # MMAD's mode: every entry, normal first
            assert texts[0] == pairs["good"]
            continue
        assert len(texts) == 4 and texts[-1] == pairs["good"] and pairs["good"] not in texts[:3]
        firsts.append(texts[0] == pairs["cut"])
    assert 60 < len(firsts) < 140 and 0.6 < np.mean(firsts) < 0.85
