import json

import pytest

from reason_iad.cli import main


@pytest.fixture
def kb(tmp_path):
    def run(*args):
        flags = ["--db", str(tmp_path / "kb"), "--text-embedder", "fake:32", "--image-embedder", "none"]
        return main(["kb", *flags, *args])

    return run


def test_seeded_on_first_use_and_curated_from_the_cli(kb, capsys, tmp_path):
    assert kb("list", "--dataset", "SynthIAD", "--category", "wood") == 0
    assert "synthiad/wood/scratch" in capsys.readouterr().out
    assert (
        kb(
            "add",
            "--dataset",
            "Mine",
            "--category",
            "gear",
            "--defect",
            "chip",
            "--title",
            "Chip",
            "--text",
            "A missing tooth corner.",
            "--author",
            "ana",
        )
        == 0
    )
    assert kb("edit", "mine/gear/chip", "--text", "A chipped tooth.", "--author", "bo") == 0
    assert kb("show", "mine/gear/chip") == 0
    assert "A chipped tooth." in capsys.readouterr().out
    assert kb("search", "chipped tooth", "--mode", "fts", "-k", "1") == 0
    assert "mine/gear/chip" in capsys.readouterr().out
    assert kb("tag", "before-delete") == 0
    assert kb("delete", "mine/gear/chip", "--yes", "--author", "cy") == 0
    assert kb("versions") == 0
    history = capsys.readouterr().out
    assert "ana" in history and "bo" in history and "cy" in history


def test_export_and_import_round_trip_from_the_cli(kb, capsys, tmp_path):
    out = tmp_path / "dk.json"
    assert kb("export", str(out)) == 0
    data = json.loads(out.read_text())
    assert set(data) >= {"MVTec", "VisA", "MVTec-LOCO", "GoodsAD", "SynthIAD"}
    assert kb("import", str(out), "--author", "ana") == 0
    assert "changed 0" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (("show", "no/such/id"), "no knowledge entry"),
        (("add", "--dataset", "D", "--category", "c", "--defect", "d", "--title", "T", "--text", " "), "text"),
        (("add", "--dataset", "D", "--category", "c", "--defect", "d", "--title", "T"), "--text"),
        (("edit", "synthiad/wood/scratch"), "nothing to change"),
        (("delete", "synthiad/wood/scratch"), "confirmation"),
        (("restore", "999"), "does not exist"),
        (("search", "   "), "empty"),
        (("import", "/no/such/file.json"), "not found"),
    ],
)
def test_cli_errors_are_one_line_and_write_nothing(kb, capsys, args, message):
    kb("list")
    capsys.readouterr()
    assert kb(*args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    kb("versions")
    assert capsys.readouterr().out.count("\n") == 1  # still only the seed version
