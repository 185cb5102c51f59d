import json
import subprocess
import sys

import pytest

from reason_iad.cli import main
from reason_iad.synth import generate_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "data"
    generate_dataset(root, per_category=1, image_size=64, categories=["bottle", "screw"])
    return root


@pytest.fixture(scope="module")
def model(tiny_model_dirs):
    return str(tiny_model_dirs["qwen2_5_vl"])


def _eval(dataset, out, model, *extra):
    return [
        "eval",
        "--data",
        str(dataset),
        "--out",
        str(out),
        "--model",
        model,
        "--device",
        "cpu",
        "--steps",
        "1",
        "--latents",
        "2",
        "--max-new-tokens",
        "4",
        *extra,
    ]


def test_eval_runs_resumes_and_reports_then_compares(dataset, model, tmp_path, capsys):
    assert main(_eval(dataset, tmp_path / "plain", model, "--mode", "plain", "--limit", "3", "--shots", "0")) == 0
    out = capsys.readouterr().out
    assert "answered 3 of 3 questions with 1 process" in out and "| **Average** |" in out
    assert main(_eval(dataset, tmp_path / "plain", model, "--mode", "plain", "--limit", "5", "--shots", "0")) == 0
    assert "answered 2 of 5 questions (resumed: 3 already answered)" in capsys.readouterr().out
    assert (
        main(
            _eval(
                dataset,
                tmp_path / "full",
                model,
                "--limit",
                "5",
                "--similar-template",
                "--categories",
                "screw",
                "--subtasks",
                "Anomaly Detection,object analysis",
            )
        )
        == 0
    )
    capsys.readouterr()
    lines = [json.loads(line) for line in (tmp_path / "full" / "answers.jsonl").read_text().splitlines()]
    assert {line["category"] for line in lines} == {"screw"}
    assert {line["subtask"] for line in lines} <= {"Anomaly Detection", "Object Structure", "Object Details"}
    assert (
        main(
            [
                "eval",
                "report",
                str(tmp_path / "plain"),
                str(tmp_path / "full"),
                "--out",
                str(tmp_path / "cmp"),
                "--score",
                "parsed",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| plain |" in out and "| full |" in out
    assert {p.name for p in (tmp_path / "cmp").iterdir()} >= {
        "comparison.md",
        "comparison.csv",
        "comparison.json",
        "comparison.html",
    }
    assert main(["eval", "report", str(tmp_path / "plain"), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "accuracy.csv").exists()


def _bad_mmad(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "mmad.json").write_text("{oops")
    return tmp_path / "bad"


@pytest.mark.parametrize(
    "make_argv, message",
    [
        (lambda d, t: ["eval", "--out", str(t / "run")], "eval needs --data ROOT and --out RUN_DIR"),
        (lambda d, t: ["eval", "--data", str(t / "nope"), "--out", str(t / "run")], "data root not found"),
        (lambda d, t: ["eval", "--data", str(t), "--out", str(t / "run")], "has no mmad.json"),
        (lambda d, t: ["eval", "--data", str(_bad_mmad(t)), "--out", str(t / "run")], "not valid JSON"),
        (lambda d, t: ["eval", "--data", str(d), "--out", str(t / "run"), "--categories", "pcb1"], "unknown category"),
        (lambda d, t: ["eval", "--data", str(d), "--out", str(t / "run"), "--subtasks", "Colour"], "unknown subtask"),
        (
            lambda d, t: ["eval", "--data", str(d), "--out", str(t / "run"), "--clip", "tiny_clip"],
            "add --knowledge retrieved",
        ),
        (
            lambda d, t: ["eval", "--data", str(d), "--out", str(t / "run"), "--mode", "plain", "--knowledge", "all"],
            "uses no knowledge",
        ),
        (lambda d, t: ["eval", "--data", str(d), "--out", str(t / "run"), "--workers", "2"], "need --ray"),
        (
            lambda d, t: ["eval", "--data", str(d), "--out", str(t / "run"), "--model", "/no/such/model"],
            "neither a local folder",
        ),
        (lambda d, t: ["eval", "--data", str(d), "--out", str(t / "run"), "--steps", "-1"], "num_steps"),
        (lambda d, t: ["eval", "report", str(t)], "not an evaluation run folder"),
        (lambda d, t: ["eval", "report", str(t), str(t)], "needs --out"),
    ],
)
def test_errors_are_one_line_exit_2_and_write_nothing(dataset, tmp_path, capsys, make_argv, message):
    argv = make_argv(dataset, tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_resuming_with_another_configuration_is_refused(dataset, model, tmp_path, capsys):
    assert main(_eval(dataset, tmp_path / "run", model, "--mode", "plain", "--limit", "2")) == 0
    before = (tmp_path / "run" / "answers.jsonl").read_bytes()
    assert main(_eval(dataset, tmp_path / "run", model, "--mode", "plain", "--limit", "2", "--seed", "7")) == 2
    assert "another configuration (app.reasoning.seed: 42 -> 7)" in capsys.readouterr().err
    assert (tmp_path / "run" / "answers.jsonl").read_bytes() == before


def test_the_library_imports_without_ray_and_ray_flags_say_how_to_install_it(dataset, tmp_path):
    probe = (
        "import sys; sys.modules['ray'] = None\n"
        "import reason_iad.eval, reason_iad.eval.distributed, reason_iad.eval.command\n"
        "from reason_iad.cli import main\n"
        f"sys.exit(main(['eval', '--data', {str(dataset)!r}, '--out', {str(tmp_path / 'run')!r}, '--ray']))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "--ray needs Ray, which is not installed: pip install 'ray==" in done.stderr
    assert not (tmp_path / "run").exists()


def test_eval_retrieval_prints_one_table_and_refuses_bad_input(dataset, tmp_path, capsys):
    assert main(["eval", "retrieval", "--data", str(dataset), "--no-focus", "--k", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and "top-2 (all entries)" in lines[0] and lines[2].startswith("| tiny_clip | 2 |")
    assert main(["eval", "retrieval", "--data", str(tmp_path / "nope")]) == 2
    assert "data root not found" in capsys.readouterr().err


def test_an_explaining_run_records_rationales_and_reports_their_agreement(dataset, model, tmp_path, capsys):
    argv = _eval(dataset, tmp_path / "explained", model, "--mode", "plain", "--limit", "4", "--shots", "0")
    assert main([*argv, "--rationale", "continue", "--max-new-tokens", "12"]) == 0
    lines = (tmp_path / "explained" / "answers.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert all(r["reply"] == "" and r["parsed_answer"] is None for r in records)  # nothing MMAD would parse
    assert any(r["rationale"] for r in records)  # the explanation decoded after the answer phrase
    run = json.loads((tmp_path / "explained" / "run.json").read_text())
    assert run["config"]["app"]["reasoning"]["rationale"] == "continue"
    capsys.readouterr()
