"""The harness's prompt aids: the visual memory's evidence and retrieved knowledge, per query image."""

import json

import numpy as np
import pytest
from PIL import Image

from reason_iad.config import BackendConfig, ReasoningConfig
from reason_iad.errors import UserError
from reason_iad.eval.aids import PromptAids
from reason_iad.eval.answering import read_set
from reason_iad.eval.answers import read_answers
from reason_iad.eval.run_config import EvalRunConfig
from reason_iad.eval.runner import run_eval
from reason_iad.synth import generate_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "data"
    generate_dataset(root, per_category=2, image_size=96, categories=["pill", "carpet"], templates=4)
    return root


def _config(dataset, tiny_model_dirs, **reasoning) -> EvalRunConfig:
    return EvalRunConfig(
        data=str(dataset),
        backend=BackendConfig(model=str(tiny_model_dirs["qwen2_5_vl"]), device="cpu"),
        reasoning=ReasoningConfig(**{"mode": "knowledge", "max_new_tokens": 2, **reasoning}),
        knowledge="retrieved",
        retriever="tiny_clip",
    )


def test_evidence_and_retrieved_knowledge_per_image(dataset, tiny_model_dirs):
    config = _config(dataset, tiny_model_dirs, evidence="text")
    eval_set = read_set(config)
    assert {len(paths) for paths in eval_set.normal_images.values()} == {4}
    aids = PromptAids.build(config, eval_set)
    knowledge = {(e["category"], e["key"]): e for e in _entries(dataset)}
    try:
        for item in eval_set.items[:: max(1, len(eval_set.items) // 6)]:
            image = Image.open(item.image_path).convert("RGB")
            got = aids.for_image(item, image)
            assert got.evidence.startswith("verdict: ") and "most anomalous region: " in got.evidence
            assert got.image is image and got.patch_prior is not None
            assert len(got.knowledge) == 4 and got.knowledge[-1] == knowledge[(item.category, "good")]["text"]
            own = {e["text"] for (category, _), e in knowledge.items() if category == item.category}
            assert set(got.knowledge) <= own
            assert aids.for_image(item, image) is got  # computed once per image
    finally:
        folder = aids.folder.name
        aids.close()
    assert not __import__("os").path.exists(folder)


def _entries(dataset) -> list[dict]:
    data = json.loads((dataset / "domain_knowledge.json").read_text())
    return [
        {"category": c, "key": k, "text": t}
        for cats in data.values()
        for c, keys in cats.items()
        for k, t in keys.items()
    ]


def test_drawn_evidence_changes_only_the_model_image(dataset, tiny_model_dirs):
    config = _config(dataset, tiny_model_dirs, evidence="box")
    eval_set = read_set(config)
    aids = PromptAids.build(config, eval_set)
    try:
        item = next(i for i in eval_set.items if not i.is_normal)
        image = Image.open(item.image_path).convert("RGB")
        got = aids.for_image(item, image)
        assert got.evidence == "" and got.image.size == image.size
        assert not np.array_equal(np.asarray(got.image), np.asarray(image))
    finally:
        aids.close()


def test_a_run_with_evidence_records_answers_for_every_question(dataset, tiny_model_dirs, tiny_backends, tmp_path):
    config = _config(dataset, tiny_model_dirs, evidence="text", readout="likelihood")
    result = run_eval(config, tmp_path / "run", backend=tiny_backends["qwen2_5_vl"], progress=False, limit=6)
    records = read_answers(tmp_path / "run" / "answers.jsonl").records
    assert result.answered_now == 6 and len(records) == 6
    assert all(r.readout_answer in r.options for r in records)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["config"]["reasoning"]["evidence"] == "text" and run["config"]["retriever"] == "tiny_clip"


def test_no_aids_without_evidence_prior_or_retrieval(dataset, tiny_model_dirs):
    config = EvalRunConfig(
        data=str(dataset),
        backend=BackendConfig(model=str(tiny_model_dirs["qwen2_5_vl"])),
        reasoning=ReasoningConfig(mode="plain"),
        knowledge="none",
    )
    assert PromptAids.build(config, read_set(config)) is None


def test_a_category_without_normal_templates_is_refused(tmp_path, tiny_model_dirs):
    root = tmp_path / "data"
    generate_dataset(root, per_category=1, image_size=64, categories=["pill"], templates=1)
    config = _config(root, tiny_model_dirs, evidence="text")
    with pytest.raises(UserError, match="at least 2 normal templates"):
        PromptAids.build(config, read_set(config))


def test_retrieval_report_counts_defective_images_and_refuses_a_bad_k(dataset):
    from reason_iad.eval.retrieval import evaluate_retrieval

    report = evaluate_retrieval(dataset, "tiny_clip", k=2)
    assert report.images == 4 and report.k == 2  # 2 defective images in each of 2 categories
    for value in (report.top_k_all, report.top_k_category, report.top1_category, report.focused):
        assert 0.0 <= value <= 100.0 and (value * report.images / 100) % 1 < 1e-6
    assert report.top_k_category >= report.top1_category
    assert "| tiny_clip | 4 |" in report.markdown()
    with pytest.raises(UserError, match="k must be"):
        evaluate_retrieval(dataset, "tiny_clip", k=0)
