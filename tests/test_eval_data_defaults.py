"""Eval defaults follow the data (a file without templates runs zero-shot); skipped-everything says why."""

import json

import pytest
from PIL import Image

from reason_iad.cli import build_parser, main
from reason_iad.errors import UserError
from reason_iad.eval.command import build_config
from reason_iad.eval.reader import read_eval_set

QUESTION = {
    "Question": "Is there any defect in the object?",
    "Options": {"A": "Yes.", "B": "No."},
    "Answer": "B",
    "type": "Anomaly Detection",
}


def _peer_file(root, templates=()):
    """A peer's MMAD-format file: Anomaly Detection questions only, template lists as given (empty by default)."""
    images = ["Peer/widget/test/good/0.png", "Peer/widget/test/bad/1.png"]
    for key in [*images, *templates]:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), (120, 120, 120)).save(root / key)
    records = {
        key: {"conversation": [QUESTION], "similar_templates": list(templates), "random_templates": list(templates)}
        for key in images
    }
    (root / "mmad.json").write_text(json.dumps(records))
    return root


def _config(root, *flags):
    lines: list[str] = []
    args = build_parser().parse_args(["eval", "--data", str(root), "--out", str(root / "run"), *flags])
    return build_config(args, note=lines.append), lines


def test_a_file_without_templates_defaults_to_zero_shot_without_the_memory_and_says_so(tmp_path):
    config, lines = _config(_peer_file(tmp_path))
    reasoning = config.reasoning
    assert (config.shots, reasoning.evidence, reasoning.injection_prior) == (0, "none", "attention")
    assert len(lines) == 1 and "no template images" in lines[0]
    assert all(flag in lines[0] for flag in ("--shots 0", "--evidence none", "--prior attention"))
    assert len(read_eval_set(config.data, shots=config.shots).items) == 2  # the run can start
    with pytest.raises(UserError, match="use --mode latent or plain"):  # advice that leads to a run that starts
        read_eval_set(config.data, shots=config.shots, knowledge=config.knowledge)
    assert _config(tmp_path, "--mode", "latent")[0].knowledge == "none"


def test_given_flags_win_over_the_data_defaults(tmp_path):
    config, lines = _config(_peer_file(tmp_path), "--shots", "1", "--evidence", "box")
    assert (config.shots, config.reasoning.evidence, config.reasoning.injection_prior) == (1, "box", "attention")
    assert "--prior attention" in lines[0] and "--shots" not in lines[0] and "--evidence" not in lines[0]
    config, lines = _config(tmp_path, "--shots", "0", "--evidence", "text", "--prior", "mix")
    assert lines == [] and config.reasoning.injection_prior == "mix"


def test_a_file_with_templates_keeps_the_models_defaults(tmp_path):
    config, lines = _config(_peer_file(tmp_path, templates=["Peer/widget/train/good/t.png"]))
    assert (config.shots, config.reasoning.evidence, config.reasoning.injection_prior) == (1, "text", "mix")
    assert lines == []
    other, lines = _config(_peer_file(tmp_path / "b"), "--model", str(tmp_path / "some-model"))
    assert (other.shots, other.reasoning.evidence) == (0, "none") and "--evidence" not in lines[0]


def test_when_every_image_is_missing_the_error_says_so_with_an_example_path(tmp_path):
    keys = ["DS-MVTec/bottle/image/good/0.png", "DS-MVTec/bottle/image/broken/1.png"]
    (tmp_path / "mmad.json").write_text(json.dumps({key: {"conversation": [QUESTION]} for key in keys}))
    with pytest.raises(UserError) as err:
        read_eval_set(tmp_path, shots=0, skip_missing=True)
    message = str(err.value)
    assert message.startswith(f"all 2 images are missing under {tmp_path.resolve()}")
    assert str(tmp_path.resolve() / sorted(keys)[0]) in message and "\n" not in message
    _peer_file(tmp_path)  # images present, no templates: one-shot has nothing to compare with
    with pytest.raises(UserError, match="none of the 2 images can be asked: 0 are missing .* 2 lack their one-shot"):
        read_eval_set(tmp_path, shots=1, skip_missing=True)


def test_all_missing_through_the_cli_is_one_line_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "mmad.json").write_text(json.dumps({"A/b/c.png": {"conversation": [QUESTION]}}))
    argv = ["eval", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--skip-missing", "--mode", "plain"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("reason-iad: error: all 1 images are missing under") and len(err) == 2
    assert not (tmp_path / "run").exists()


def test_the_harness_records_the_models_own_reply_for_mmads_parsing(tmp_path):
    """`--score parsed` parses the reply: it must be the free reply, not a follow-up explanation."""
    config, _ = _config(_peer_file(tmp_path))
    assert config.reasoning.rationale == "reply"
