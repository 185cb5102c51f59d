"""Common options may follow the action; library log lines stay out of user output unless --verbose.

The model and reasoning flags are declared once (`cli_options`) and read into config by one function each.
"""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

import app
from reason_iad.cli import build_parser, main
from reason_iad.cli_options import (
    MODEL_OPTIONS,
    REASONING_OPTIONS,
    SHARED_REASONING_FLAGS,
    backend_from_args,
    reasoning_from_args,
    subcommand_parsers,
)
from reason_iad.config import AppConfig, BackendConfig, ReasoningConfig, with_model_defaults
from reason_iad.errors import UserError
from reason_iad.eval.command import build_config
from reason_iad.library_logs import LOG_LEVEL_VARIABLES, quiet_library_logs
from reason_iad.paths import EXAMPLES_DIR

KB_POSITIONALS = {
    "show": ["a/b/c"],
    "edit": ["a/b/c"],
    "delete": ["a/b/c"],
    "search": ["q"],
    "import": ["f.json"],
    "export": ["f.json"],
    "restore": ["3"],
}
KB_REQUIRED = {
    "add": ["--dataset", "D", "--category", "c", "--defect", "d", "--title", "T"],
    "impact": ["--data", "set", "--from", "1", "--to", "2"],
    "swap": ["--data", "set", "--category", "wood", "--defects", "hole,scratch"],
}


def _kb_actions() -> list[str]:
    kb = next(p for p in subcommand_parsers(build_parser()) if p.prog.endswith(" kb"))
    return sorted({p.prog.split()[-1] for p in subcommand_parsers(kb)})


@pytest.mark.parametrize("action", _kb_actions())
def test_kb_options_come_before_or_after_the_action(action):
    parser = build_parser()
    rest = [action, *KB_POSITIONALS.get(action, []), *KB_REQUIRED.get(action, [])]
    common = ["--db", "/x", "--text-embedder", "fake:8", "--image-embedder", "none"]
    for argv in (["kb", *common, *rest], ["kb", *rest, *common]):
        args = parser.parse_args(argv)
        assert (args.db, args.text_embedder, args.image_embedder) == ("/x", "fake:8", "none"), argv
    args = parser.parse_args(["kb", *rest])
    assert (args.db, args.text_embedder, args.image_embedder) == ("", None, None)  # the defaults survive


def test_verbose_is_accepted_at_every_level():
    parser = build_parser()
    pending, everywhere = [parser], []
    while pending:
        current = pending.pop()
        pending += subcommand_parsers(current)
        everywhere.append(current)
    assert len(everywhere) >= 15
    assert all("--verbose" in p.format_help() for p in everywhere)
    for argv in (
        ["--verbose", "kb", "list"],
        ["kb", "--verbose", "list"],
        ["kb", "list", "--verbose"],
        ["eval", "report", "run", "--verbose"],
        ["synth", "--out", "d", "--verbose"],
    ):
        assert parser.parse_args(argv).verbose is True, argv
    assert parser.parse_args(["kb", "list"]).verbose is False


def test_quiet_library_logs_keeps_a_level_the_user_set():
    environ = {"LANCEDB_LOG": "debug"}
    quiet_library_logs(environ=environ)
    assert environ == {"LANCEDB_LOG": "debug", "LANCE_LOG": "error"}
    verbose: dict[str, str] = {}
    quiet_library_logs(verbose=True, environ=verbose)
    assert verbose == {}


def _first_run(db, *flags):
    env = {k: v for k, v in os.environ.items() if k not in LOG_LEVEL_VARIABLES}
    argv = [
        sys.executable,
        "-m",
        "reason_iad.cli",
        "kb",
        "list",
        "--db",
        str(db),
        "--text-embedder",
        "fake:8",
        "--image-embedder",
        "none",
        *flags,
    ]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)


def test_a_first_run_prints_no_lancedb_warnings_unless_verbose(tmp_path):
    quiet = _first_run(tmp_path / "new")
    assert quiet.returncode == 0, quiet.stderr
    assert "entries)" in quiet.stdout
    assert "WARN" not in quiet.stderr
    loud = _first_run(tmp_path / "loud", "--verbose")
    assert loud.returncode == 0, loud.stderr
    assert "WARN" in loud.stderr  # the lines exist: the quiet run hid them


MODEL_FLAGS = ["--model", "/models/x", "--quantization", "4bit", "--device", "cpu", "--dtype", "bfloat16"]
ASKED = BackendConfig(model="/models/x", quantization="4bit", device="cpu", dtype="bfloat16")
MODEL_COMMANDS = [["infer"], ["eval"], ["bench", "backend"], ["bench", "latent"]]
APP_VARIABLES = {"model": "REASON_IAD_MODEL", "quantization": "REASON_IAD_QUANTIZATION"}
APP_VARIABLES |= {"device": "REASON_IAD_DEVICE", "dtype": "REASON_IAD_DTYPE"}
BOTTLE = sorted(p for p in (EXAMPLES_DIR / "bottle").glob("*.png") if not p.name.endswith("_mask.png"))[0]


@pytest.fixture
def no_model_environment(monkeypatch):
    for variable in APP_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)


def _parser(*path: str):
    parser = build_parser()
    for name in path:
        parser = next(p for p in subcommand_parsers(parser) if p.prog.split()[-1] == name)
    return parser


def _help_text(parser) -> str:
    return " ".join(parser.format_help().split())


def _app_help(capsys) -> str:
    with pytest.raises(SystemExit):
        app.parse_args(["--help"])
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_each_command_reads_the_model_flags_into_the_same_backend(command):
    assert backend_from_args(build_parser().parse_args([*command, *MODEL_FLAGS])) == ASKED


def test_the_app_reads_the_model_flags_into_the_same_backend(no_model_environment):
    args = app.parse_args(MODEL_FLAGS)
    assert backend_from_args(args) == ASKED == app.config_from_args(args).backend


def test_every_model_flag_has_the_one_help_text(capsys, monkeypatch, no_model_environment):
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapped (or hyphen-split) help lines
    helps = {" ".join(c): _help_text(_parser(*c)) for c in MODEL_COMMANDS} | {"app.py": _app_help(capsys)}
    for command, text in helps.items():
        for name, options in MODEL_OPTIONS.items():
            assert f"--{name}" in text and options["help"] in text, (command, name)
    for command in (["bench", "eval"], ["bench", "studio"]):  # their runners take a model name only
        assert MODEL_OPTIONS["model"]["help"] in _help_text(_parser(*command))
    for command in ("infer", "eval"):
        text = _help_text(_parser(command))
        assert "likelihood for the embedded model, letter otherwise" in text  # --readout's default, named
        assert all(REASONING_OPTIONS[name][1] in text for name in SHARED_REASONING_FLAGS)


def test_each_command_keeps_its_model_defaults(no_model_environment):
    for command in (["infer"], ["eval"]):
        assert backend_from_args(build_parser().parse_args(command)) == BackendConfig()  # embedded, none, auto, auto
    for command in (["bench", "backend"], ["bench", "latent"]):
        assert backend_from_args(build_parser().parse_args(command)) == BackendConfig(model="tiny-bench")
    assert app.config_from_args(app.parse_args([])).backend == BackendConfig()
    assert build_parser().parse_args(["bench", "eval"]).model == "embedded"
    assert build_parser().parse_args(["bench", "studio"]).model == "embedded"


def test_the_visual_memory_and_gpu_bench_keep_their_own_device_flag():
    memory = build_parser().parse_args(["bench", "memory"])
    assert memory.device == "cpu" and not hasattr(memory, "dtype")
    gpu = build_parser().parse_args(["bench", "gpu"])
    assert gpu.device is None and not hasattr(gpu, "dtype")


def test_the_app_model_flags_default_to_the_environment_and_given_flags_win(monkeypatch, capsys):
    values = {"model": "/env/m", "quantization": "8bit", "device": "cuda:1", "dtype": "float16"}
    for name, variable in APP_VARIABLES.items():
        monkeypatch.setenv(variable, values[name])
    assert app.config_from_args(app.parse_args([])).backend == BackendConfig(**values)
    assert app.config_from_args(app.parse_args(MODEL_FLAGS)).backend == ASKED
    text = _app_help(capsys)
    assert all(f"[{variable}]" in text for variable in APP_VARIABLES.values())


def test_the_app_keeps_the_config_file_dtype_unless_given(tmp_path, no_model_environment):
    saved = tmp_path / "config.json"
    saved.write_text(AppConfig(backend=BackendConfig(dtype="float16")).to_json())
    assert app.config_from_args(app.parse_args(["--config", str(saved)])).backend.dtype == "float16"
    given = app.parse_args(["--config", str(saved), "--dtype", "bfloat16", "--device", "cpu"])
    assert app.config_from_args(given).backend == BackendConfig(device="cpu", dtype="bfloat16")
    assert app.config_from_args(app.parse_args(["--dtype", "float32"])).backend.dtype == "float32"


class _Loaded(Exception):
    """Raised by the fake `Pipeline.load`: the config has been built, nothing more is needed."""


def _infer_config(monkeypatch, tmp_path, flags) -> AppConfig:
    from reason_iad.pipeline import Pipeline

    seen: list[AppConfig] = []

    def load(config, with_knowledge=True):
        seen.append(config)
        raise _Loaded

    monkeypatch.setattr(Pipeline, "load", load)
    with pytest.raises(_Loaded):
        main(["infer", str(BOTTLE), "--db", str(tmp_path / "kb"), *flags])
    return seen[0]


def _eval_config(tmp_path, flags):
    root = tmp_path / "data"
    images, template = ["D/widget/test/good/0.png", "D/widget/test/bad/1.png"], "D/widget/train/good/t.png"
    for key in [*images, template]:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), (120, 120, 120)).save(root / key)
    question = {
        "Question": "Any defect?",
        "Options": {"A": "Yes.", "B": "No."},
        "Answer": "B",
        "type": "Anomaly Detection",
    }
    records = {
        k: {"conversation": [question], "similar_templates": [template], "random_templates": [template]} for k in images
    }
    (root / "mmad.json").write_text(json.dumps(records))
    args = build_parser().parse_args(["eval", "--data", str(root), "--out", str(tmp_path / "run"), *flags])
    return build_config(args, note=lambda line: None)


@pytest.mark.parametrize(
    ("flags", "readout"),
    [
        ([], "likelihood"),
        (["--readout", "letter"], "letter"),
        (["--model", "/models/x"], "letter"),
        (["--model", "/models/x", "--readout", "likelihood"], "likelihood"),
    ],
)
def test_the_readout_follows_the_model_unless_given(flags, readout, tmp_path, monkeypatch):
    assert _infer_config(monkeypatch, tmp_path, flags).reasoning.readout == readout
    assert _eval_config(tmp_path, flags).reasoning.readout == readout


def test_unset_reasoning_flags_keep_the_model_defaults(tmp_path, monkeypatch):
    embedded = with_model_defaults(AppConfig()).reasoning
    assert _infer_config(monkeypatch, tmp_path, []).reasoning == embedded
    assert _eval_config(tmp_path, []).reasoning == dataclasses.replace(embedded, rationale="reply")
    other = with_model_defaults(AppConfig(backend=BackendConfig(model="/models/x"))).reasoning
    assert _eval_config(tmp_path, ["--model", "/models/x"]).reasoning == dataclasses.replace(other, rationale="reply")


def test_given_reasoning_flags_reach_the_config(tmp_path, monkeypatch):
    shared = ["--mode", "plain", "--steps", "0", "--latents", "2", "--seed", "7", "--readout", "letter"]
    expected = {"mode": "plain", "num_steps": 0, "num_latent_tokens": 2, "seed": 7, "readout": "letter"}
    infer = _infer_config(monkeypatch, tmp_path, shared).reasoning
    assert {field: getattr(infer, field) for field in expected} == expected
    evaluation = _eval_config(tmp_path, [*shared, "--evidence", "box", "--prior", "anomaly", "--max-new-tokens", "128"])
    expected |= {"evidence": "box", "injection_prior": "anomaly", "max_new_tokens": 128}
    assert {field: getattr(evaluation.reasoning, field) for field in expected} == expected
    assert evaluation.backend == BackendConfig()


def test_the_commands_build_their_backend_from_the_model_flags(tmp_path, monkeypatch):
    assert _infer_config(monkeypatch, tmp_path, MODEL_FLAGS).backend == ASKED
    assert _eval_config(tmp_path, MODEL_FLAGS).backend == ASKED
    import torch

    from reason_iad.backends import loading
    from reason_iad.bench.command import _backend

    monkeypatch.setattr(loading, "load_backend", lambda config: config)
    threads = torch.get_num_threads()
    try:
        assert _backend(build_parser().parse_args(["bench", "backend", *MODEL_FLAGS])) == ASKED
    finally:
        torch.set_num_threads(threads)


def test_reasoning_values_are_checked_with_the_config_messages(tmp_path, capsys):
    with pytest.raises(UserError, match="num_steps must be between 0 and 500"):
        reasoning_from_args(build_parser().parse_args(["infer", "--steps", "501"]), ReasoningConfig())
    assert main(["infer", str(BOTTLE), "--db", str(tmp_path / "kb"), "--latents", "0"]) == 2
    assert "num_latent_tokens must be between 1 and 64" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["eval", "--evidence", "glow"])
    assert "invalid choice: 'glow'" in capsys.readouterr().err
