import dataclasses
import json

import pytest

from reason_iad.config import AppConfig, BackendConfig, KnowledgeConfig, ReasoningConfig
from reason_iad.errors import UserError
from reason_iad.eval.answers import AnswerWriter, comparable, read_answers
from reason_iad.eval.run_config import EvalRunConfig
from reason_iad.eval.runner import run_eval
from reason_iad.synth import generate_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "data"
    generate_dataset(root, per_category=1, image_size=64, categories=["bottle", "carpet"])
    return root


@pytest.fixture(scope="module")
def config(dataset, tiny_model_dirs):
    return EvalRunConfig.of(
        data=str(dataset),
        backend=BackendConfig(model=str(tiny_model_dirs["qwen2_5_vl"]), device="cpu"),
        reasoning=ReasoningConfig(mode="full", num_steps=1, num_latent_tokens=2, max_new_tokens=4),
    )


@pytest.fixture(scope="module")
def backend(tiny_backends):
    return tiny_backends["qwen2_5_vl"]


@pytest.fixture(scope="module")
def uninterrupted(config, backend, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "whole"
    result = run_eval(config, run_dir, backend=backend, progress=False)
    return result, comparable(read_answers(run_dir / "answers.jsonl").records)


def test_a_run_writes_one_line_per_question_run_json_and_the_report(uninterrupted):
    result, answers = uninterrupted
    run_dir = result.run_dir
    assert result.planned == result.total_questions == result.answered_now == len(answers) > 10
    assert {p.name for p in run_dir.iterdir()} >= {
        "run.json",
        "answers.jsonl",
        "scores.json",
        "accuracy.csv",
        "report.md",
        "heatmap.html",
    }
    run = json.loads((run_dir / "run.json").read_text())
    assert run["config"]["app"]["reasoning"]["num_steps"] == 1 and run["questions"] == len(answers)
    line = json.loads((run_dir / "answers.jsonl").read_text().splitlines()[0])
    assert line["readout"] == "letter" and line["readout_answer"] in line["options"]
    assert "parsed_answer" in line and isinstance(line["reply"], str) and line["template"]
    assert result.scored.scores.num_answers == len(answers)


def test_limited_run_continued_equals_an_uninterrupted_run(uninterrupted, config, backend, tmp_path):
    _, expected = uninterrupted
    first = run_eval(config, tmp_path / "run", backend=backend, progress=False, limit=7)
    assert first.answered_now == 7 and first.planned == 7
    second = run_eval(config, tmp_path / "run", backend=backend, progress=False)
    assert second.answered_before == 7 and second.answered_now == len(expected) - 7
    assert comparable(read_answers(tmp_path / "run" / "answers.jsonl").records) == expected
    again = run_eval(config, tmp_path / "run", backend=None, progress=False)  # complete: nothing to load or ask
    assert again.answered_now == 0 and again.workers == 0


def test_crash_with_a_partial_last_line_resumes_to_the_same_answers(uninterrupted, config, backend, tmp_path):
    _, expected = uninterrupted
    run_dir = tmp_path / "crashed"
    run_eval(config, run_dir, backend=backend, progress=False, limit=5)
    answers = run_dir / "answers.jsonl"
    whole = answers.read_bytes()
    lines = whole.splitlines(keepends=True)
    answers.write_bytes(b"".join(lines[:4]) + lines[4][:40])  # the 5th line was being written
    log = read_answers(answers)
    assert len(log.records) == 4 and log.partial_tail_bytes == 40
    run_eval(config, run_dir, backend=backend, progress=False)
    assert comparable(read_answers(answers).records) == expected
    assert all(line.endswith(b"}\n") for line in answers.read_bytes().splitlines(keepends=True))


def test_another_configuration_in_the_run_folder_is_refused_and_nothing_changes(config, backend, tmp_path):
    run_dir = tmp_path / "run"
    run_eval(config, run_dir, backend=backend, progress=False, limit=2)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    other = dataclasses.replace(config, shots=0)
    with pytest.raises(UserError, match=r"another configuration \(shots: 1 -> 0\)"):
        run_eval(other, run_dir, backend=backend, progress=False)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_a_foreign_non_empty_folder_is_refused(config, backend, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not an evaluation run folder"):
        run_eval(config, tmp_path, backend=backend, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_parsed_score_and_likelihood_readout(config, backend, tmp_path):
    reasoning = ReasoningConfig(mode="plain", readout="likelihood", max_new_tokens=4)
    likelihood = dataclasses.replace(config, app=dataclasses.replace(config.app, reasoning=reasoning), knowledge="none")
    result = run_eval(likelihood, tmp_path / "lik", backend=backend, progress=False, limit=4, score="parsed")
    assert result.scored.scores.source == "parsed" and result.scored.scores.readouts == ("likelihood",)
    assert "letter parsed from the reply" in result.report.markdown


def test_one_writer_at_a_time(tmp_path):
    with AnswerWriter(tmp_path / "answers.jsonl"):
        with pytest.raises(UserError, match="another run is writing"):
            AnswerWriter(tmp_path / "answers.jsonl")


def test_a_corrupt_complete_line_is_refused(tmp_path):
    (tmp_path / "answers.jsonl").write_text('{"id": "x"}\n')
    with pytest.raises(UserError, match="line 1, is not an answer record"):
        read_answers(tmp_path / "answers.jsonl")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"app": AppConfig(knowledge=KnowledgeConfig(image_embedder="tiny_clip"))}, "only with --knowledge retrieved"),
        ({"knowledge": "none"}, "puts knowledge in the prompt"),
        ({"shots": 2}, "shots must be 0 or 1"),
        ({"app": AppConfig(reasoning=ReasoningConfig(mode="plain"))}, "uses no knowledge"),
    ],
)
def test_run_config_refusals(config, changes, message):
    with pytest.raises(UserError, match=message):
        dataclasses.replace(config, **changes)


def test_a_run_file_of_format_1_is_read_in_todays_layout(tmp_path):
    from reason_iad.eval.run_config import read_run_file

    old = {"data": "/d", "backend": {"model": "m"}, "reasoning": {"mode": "knowledge"}, "knowledge": "retrieved"}
    (tmp_path / "run.json").write_text(json.dumps({"format": 1, "config": {**old, "retriever": "tiny_clip"}}))
    config = EvalRunConfig.from_dict(read_run_file(tmp_path)["config"])
    assert (config.backend.model, config.reasoning.mode, config.retriever) == ("m", "knowledge", "tiny_clip")
    (tmp_path / "run.json").write_text(json.dumps({"format": "two", "config": old}))
    with pytest.raises(UserError, match="'format' must be a number"):
        read_run_file(tmp_path)
