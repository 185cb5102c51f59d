import subprocess
import sys

from reason_iad.cli import build_parser, main


def test_help_lists_subcommands(capsys):
    parser = build_parser()
    text = parser.format_help()
    assert "synth" in text
    assert main([]) == 2  # no subcommand: help and a usage exit code
    assert "subcommands" in capsys.readouterr().out


def test_console_script_runs_help():
    out = subprocess.run([sys.executable, "-m", "reason_iad.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "reason-iad" in out.stdout
