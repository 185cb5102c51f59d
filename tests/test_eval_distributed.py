import pytest

from reason_iad.config import BackendConfig, ReasoningConfig
from reason_iad.errors import UserError
from reason_iad.eval.answers import comparable, read_answers
from reason_iad.eval.distributed import ClusterConfig, RayAnswerer
from reason_iad.eval.run_config import EvalRunConfig
from reason_iad.eval.runner import run_eval
from reason_iad.synth import generate_dataset


def test_two_ray_workers_give_the_single_process_answers(tmp_path, tiny_model_dirs):
    pytest.importorskip("ray")
    data = tmp_path / "data"
    generate_dataset(data, per_category=1, image_size=64, categories=["bottle", "carpet"])
    config = EvalRunConfig.of(
        data=str(data),
        backend=BackendConfig(model=str(tiny_model_dirs["qwen2_5_vl"]), device="cpu"),
        reasoning=ReasoningConfig(mode="full", num_steps=2, num_latent_tokens=2, max_new_tokens=4),
    )
    single = run_eval(config, tmp_path / "single", progress=False, threads=1)
    distributed = run_eval(config, tmp_path / "ray", progress=False, cluster=ClusterConfig(workers=2))
    print(f"ray: setup {distributed.setup_seconds:.1f} s, answering {distributed.answer_seconds:.1f} s")
    assert distributed.workers == 2 and distributed.answered_now == single.planned > 10
    expected = comparable(read_answers(tmp_path / "single" / "answers.jsonl").records)
    assert comparable(read_answers(tmp_path / "ray" / "answers.jsonl").records) == expected
    assert distributed.scored.scores.dropped == single.scored.scores.dropped


def test_cluster_settings_are_checked():
    with pytest.raises(UserError, match="workers must be between"):
        ClusterConfig(workers=0)
    answerer = RayAnswerer(config=None, knowledge={}, cluster=ClusterConfig(workers=3, gpus_per_worker=0.5))
    with pytest.raises(UserError, match="3 workers x 0.5 GPUs need more than the cluster's 1 GPUs"):
        answerer._plan({"CPU": 8.0, "GPU": 1.0})
    assert RayAnswerer(None, {}, ClusterConfig(gpus_per_worker=0.5))._plan({"CPU": 8.0, "GPU": 2.0}) == (0.5, 4)
    assert RayAnswerer(None, {}, ClusterConfig())._plan({"CPU": 8.0}) == (0.0, 2)
    with pytest.raises(UserError, match="do not fit the cluster's 2 CPUs"):
        RayAnswerer(None, {}, ClusterConfig(workers=3))._plan({"CPU": 2.0})
