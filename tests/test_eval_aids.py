"""The harness's `Pipeline`: the dataset's visual memory and retrieved knowledge, per question, as the studio does."""

import json

import numpy as np
import pytest
from PIL import Image

import reason_iad.pipeline as pipeline_module
from reason_iad.config import BackendConfig, ReasoningConfig
from reason_iad.errors import UserError
from reason_iad.eval.aids import open_run_pipeline, under_item_datasets
from reason_iad.eval.answering import inspect_item, read_set
from reason_iad.eval.answers import read_answers
from reason_iad.eval.run_config import EvalRunConfig
from reason_iad.eval.runner import run_eval
from reason_iad.knowledge.entry import KnowledgeEntry
from reason_iad.reasoning.request import NO_EVIDENCE_PRIOR
from reason_iad.synth import generate_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "data"
    generate_dataset(root, per_category=2, image_size=96, categories=["pill", "carpet"], templates=4)
    return root


def _config(dataset, tiny_model_dirs, knowledge="retrieved", **reasoning) -> EvalRunConfig:
    return EvalRunConfig.of(
        data=str(dataset),
        backend=BackendConfig(model=str(tiny_model_dirs["qwen2_5_vl"]), device="cpu"),
        reasoning=ReasoningConfig(**{"mode": "knowledge", "max_new_tokens": 2, **reasoning}),
        knowledge=knowledge,
        retriever="tiny_clip" if knowledge == "retrieved" else "",
    )


@pytest.fixture
def requests(monkeypatch):
    """Every `InspectionRequest` the pipeline starts, in order."""
    seen = []
    start = pipeline_module.Reasoner.start

    def spy(self, request):
        seen.append(request)
        return start(self, request)

    monkeypatch.setattr(pipeline_module.Reasoner, "start", spy)
    return seen


def test_evidence_and_retrieved_knowledge_reach_each_request(dataset, tiny_model_dirs, tiny_backends, requests):
    config = _config(dataset, tiny_model_dirs, evidence="text")
    eval_set = read_set(config)
    assert {len(paths) for paths in eval_set.normal_images.values()} == {4}
    run = open_run_pipeline(config, eval_set, backend=tiny_backends["qwen2_5_vl"])
    knowledge = {(e["category"], e["key"]): e for e in _entries(dataset)}
    inspected = []
    memory_inspect = run.pipeline.memory.inspect
    run.pipeline.memory.inspect = lambda *a: inspected.append(a[1:]) or memory_inspect(*a)
    try:
        items = eval_set.items[:: max(1, len(eval_set.items) // 6)]
        for item in items:
            image = Image.open(item.image_path).convert("RGB")
            for _ in range(2):  # a second question about the same image
                inspection, anomaly = inspect_item(run.pipeline, item, image, None, ())
            request = requests[-1]
            assert request.evidence.startswith("verdict: ") and "most anomalous region: " in request.evidence
            assert request.image is image and request.patch_prior is not None and anomaly is not None
            assert len(request.knowledge) == 4 and request.knowledge[-1] == knowledge[(item.category, "good")]["text"]
            own = {e["text"] for (category, _), e in knowledge.items() if category == item.category}
            assert set(request.knowledge) <= own and len(inspection.knowledge) == 4
        assert len(inspected) == len(items)  # the memory is consulted once per image, not once per question
    finally:
        folder = run.folder.name
        run.close()
    assert not __import__("os").path.exists(folder)


def _entries(dataset) -> list[dict]:
    data = json.loads((dataset / "domain_knowledge.json").read_text())
    return [
        {"category": c, "key": k, "text": t}
        for cats in data.values()
        for c, keys in cats.items()
        for k, t in keys.items()
    ]


def test_drawn_evidence_changes_only_the_model_image(dataset, tiny_model_dirs, tiny_backends, requests):
    config = _config(dataset, tiny_model_dirs, evidence="box")
    eval_set = read_set(config)
    run = open_run_pipeline(config, eval_set, backend=tiny_backends["qwen2_5_vl"])
    try:
        item = next(i for i in eval_set.items if not i.is_normal)
        image = Image.open(item.image_path).convert("RGB")
        inspect_item(run.pipeline, item, image, None, ())
        assert requests[-1].evidence == "" and requests[-1].image.size == image.size
        assert not np.array_equal(np.asarray(requests[-1].image), np.asarray(image))
    finally:
        run.close()


def test_a_run_with_evidence_records_answers_for_every_question(dataset, tiny_model_dirs, tiny_backends, tmp_path):
    config = _config(dataset, tiny_model_dirs, evidence="text", readout="likelihood")
    result = run_eval(config, tmp_path / "run", backend=tiny_backends["qwen2_5_vl"], progress=False, limit=6)
    records = read_answers(tmp_path / "run" / "answers.jsonl").records
    assert result.answered_now == 6 and len(records) == 6
    assert all(r.readout_answer in r.options for r in records)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["config"]["app"]["reasoning"]["evidence"] == "text"
    assert run["config"]["app"]["knowledge"]["image_embedder"] == "tiny_clip"


def test_the_anomaly_prior_of_a_real_family_model_comes_from_the_datasets_memory(
    dataset, tiny_model_dirs, tiny_backends, requests
):
    """`eval --model <a real model> --prior mix` once raised AttributeError (a misspelt config field)."""
    config = _config(dataset, tiny_model_dirs, knowledge="all", mode="full", injection_prior="mix", num_steps=2)
    assert config.reasoning.evidence == "none"  # the memory is needed for the prior alone
    eval_set = read_set(config)
    run = open_run_pipeline(config, eval_set, backend=tiny_backends["qwen2_5_vl"])
    try:
        assert run.pipeline.memory is not None and run.pipeline.store is None
        item = next(i for i in eval_set.items if not i.is_normal)
        texts = eval_set.knowledge[(item.dataset, item.category)]
        image = Image.open(item.image_path).convert("RGB")
        inspection, anomaly = inspect_item(run.pipeline, item, image, None, texts)
        assert anomaly is not None and requests[-1].patch_prior is not None and requests[-1].evidence == ""
        assert inspection.steps and all(step.prior != NO_EVIDENCE_PRIOR for step in inspection.steps)
        assert texts and requests[-1].knowledge == tuple(texts)  # --knowledge all: the dataset's entries, as given
    finally:
        run.close()


def test_no_memory_or_knowledge_base_without_evidence_prior_or_retrieval(dataset, tiny_model_dirs, tiny_backends):
    config = EvalRunConfig.of(
        data=str(dataset),
        backend=BackendConfig(model=str(tiny_model_dirs["qwen2_5_vl"])),
        reasoning=ReasoningConfig(mode="plain"),
        knowledge="none",
    )
    run = open_run_pipeline(config, read_set(config), backend=tiny_backends["qwen2_5_vl"])
    assert run.folder is None and run.pipeline.memory is None and run.pipeline.store is None


def test_a_category_without_normal_templates_is_refused(tmp_path, tiny_model_dirs, tiny_backends):
    root = tmp_path / "data"
    generate_dataset(root, per_category=1, image_size=64, categories=["pill"], templates=1)
    config = _config(root, tiny_model_dirs, evidence="text")
    with pytest.raises(UserError, match="at least 2 normal templates"):
        open_run_pipeline(config, read_set(config), backend=tiny_backends["qwen2_5_vl"])


def test_knowledge_is_stored_under_the_datasets_the_questions_name():
    def entry(dataset, defect):
        return KnowledgeEntry(
            id=f"{dataset}/bottle/{defect}",
            dataset=dataset,
            category="bottle",
            defect=defect,
            title=defect,
            text=f"{defect} text",
        )

    mvtec, visa = entry("MVTec", "crack"), entry("VisA", "hole")
    renamed = under_item_datasets([mvtec, visa], {"DS-MVTec", "VisA"})
    assert [(e.dataset, e.id) for e in renamed] == [("DS-MVTec", "MVTec/bottle/crack"), ("VisA", "VisA/bottle/hole")]
    both = under_item_datasets([mvtec], {"DS-MVTec", "MVTec-AD"})
    assert sorted((e.dataset, e.id) for e in both) == [
        ("DS-MVTec", "DS-MVTec/MVTec/bottle/crack"),
        ("MVTec-AD", "MVTec-AD/MVTec/bottle/crack"),
    ]
    assert under_item_datasets([mvtec], {"MVTec"}) == [mvtec]


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
