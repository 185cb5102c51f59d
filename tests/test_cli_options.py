"""Common options may follow the action; library log lines stay out of user output unless --verbose."""

import os
import subprocess
import sys

import pytest

from reason_iad.cli import build_parser
from reason_iad.cli_options import subcommand_parsers
from reason_iad.library_logs import LOG_LEVEL_VARIABLES, quiet_library_logs

KB_POSITIONALS = {
    "show": ["a/b/c"],
    "edit": ["a/b/c"],
    "delete": ["a/b/c"],
    "search": ["q"],
    "import": ["f.json"],
    "export": ["f.json"],
    "restore": ["3"],
}
KB_REQUIRED = {"add": ["--dataset", "D", "--category", "c", "--defect", "d", "--title", "T"]}


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
