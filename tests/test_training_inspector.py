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
    item = PoolImage(sample.image, sample.facts, np.zeros(16, dtype=np.int64))
    question = MMADQuestion(Question="Is there any defect in the object?", Options={"A": "Yes.", "B": "No."},
                            Answer="A", type="Anomaly Detection")  # fmt: skip
    example = encoder.encode(item, question, BatchPlan(False, True, True), None, knowledge_texts()["pill"],
                             np.random.default_rng(0))  # fmt: skip
    answer = [t for t in example.labels if t != IGNORE]
    assert tokenizer.decode(answer) == "Yes.<|im_end|>"
    text = tokenizer.decode(example.ids)
    assert text.count("<|image_pad|>") == IMAGE_TOKENS and text.count("<|latent|>") == recipe.num_latent_tokens
    assert "Visual memory evidence: most anomalous region:" in text and "Description:" in text
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
