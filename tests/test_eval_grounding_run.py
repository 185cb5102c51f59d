"""The harness records grounding per answer on defective images and `eval report` shows it beside accuracy."""

import csv
import json
import shutil

import pytest

from reason_iad.cli import main
from reason_iad.config import BackendConfig, ReasoningConfig
from reason_iad.eval.grounding import METRICS
from reason_iad.eval.run_config import EvalRunConfig
from reason_iad.eval.runner import run_eval
from reason_iad.synth import generate_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "data"
    generate_dataset(root, per_category=1, image_size=64, categories=["bottle"], templates=2)
    return root


@pytest.fixture(scope="module")
def run(dataset, tiny_model_dirs, tmp_path_factory):
    from reason_iad.backends.loading import load_backend

    model = str(tiny_model_dirs["qwen2_5_vl"])
    config = EvalRunConfig.of(
        data=str(dataset),
        backend=BackendConfig(model=model, device="cpu"),
        reasoning=ReasoningConfig(mode="full", num_steps=2, num_latent_tokens=2, max_new_tokens=2, evidence="text"),
        subtasks=("Anomaly Detection", "Defect Localization"),
    )
    run_dir = tmp_path_factory.mktemp("runs") / "full"
    run_eval(config, run_dir, backend=load_backend(config.backend), progress=False)
    return run_dir


def _lines(run_dir):
    return [json.loads(line) for line in (run_dir / "answers.jsonl").read_text().splitlines()]


def test_answers_on_defective_images_carry_grounding_and_normal_ones_do_not(run):
    lines = _lines(run)
    defective = [line for line in lines if not line["is_normal"]]
    assert defective and len(defective) < len(lines)
    assert all(line["grounding"] is None for line in lines if line["is_normal"])
    for line in defective:
        grounding = line["grounding"]
        assert 0 < grounding["mask_share"] < 1 and isinstance(grounding["patch_hit"], bool)
        assert grounding["anomaly_pointing"] is not None and 0 <= grounding["box_iou"] <= 1  # the visual memory
        assert grounding["attention_pointing_chance"] is None or 0 < grounding["attention_pointing_chance"] <= 1


def test_the_run_report_shows_grounding_beside_accuracy_in_every_format(run):
    defective = sum(not line["is_normal"] for line in _lines(run))
    report = (run / "report.md").read_text()
    assert "## Accuracy (%)" in report and "## Grounding (%), value (chance)" in report
    assert f"| **All** | {defective} |" in report and "### By subtask" in report and "### By category" in report
    scores = json.loads((run / "scores.json").read_text())["scores"]["grounding"]
    overall = scores["rows"][0]
    assert overall["name"] == "All" and overall["answers"] == defective
    assert overall["metrics"]["anomaly_pointing"]["count"] == defective
    assert {row["name"] for row in scores["rows"] if row["group"] == "subtask"} == {
        "Anomaly Detection",
        "Defect Localization",
    }
    rows = list(csv.DictReader((run / "grounding.csv").open()))
    assert rows[0]["name"] == "All" and rows[0]["answers"] == str(defective)
    assert set(rows[0]) >= {f"{m}_chance" for m in METRICS} and (run / "grounding.html").is_file()


def test_an_old_run_without_grounding_reads_and_compares_with_dashes(run, tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(run / "run.json", old / "run.json")
    lines = [{k: v for k, v in line.items() if k != "grounding"} for line in _lines(run)]
    (old / "answers.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert main(["eval", "report", str(old)]) == 0
    assert "| **All** | 0 | – | – | – | – | – | – |" in capsys.readouterr().out
    assert main(["eval", "report", str(run), str(old), "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "## Grounding (%), value (chance)" in out and "| old | 0 | – |" in out and "| full | " in out
    rows = list(csv.DictReader((tmp_path / "cmp" / "comparison_grounding.csv").open()))
    assert {row["run"] for row in rows} == {"full", "old"}
    assert (tmp_path / "cmp" / "comparison_grounding.html").is_file()
