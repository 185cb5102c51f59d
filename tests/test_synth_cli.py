"""`reason-iad synth` from the command line, and the committed example gallery."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from reason_iad.cli import main
from reason_iad.mmad import MMADQuestion, load_mmad
from reason_iad.paths import EXAMPLES_DIR
from reason_iad.synth import CATEGORIES, write_gallery

SMALL = ["--per-category", "1", "--image-size", "64"]


def test_synth_writes_a_dataset_and_prints_one_summary_line(tmp_path, capsys):
    out = tmp_path / "data"
    code = main(["synth", "--out", str(out), "--categories", "pill,screw", "--seed", "5", *SMALL])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0]
    records = load_mmad(out / "mmad.json")
    assert {key.split("/")[1] for key in records} == {"pill", "screw"}


def test_template_count_can_be_chosen(tmp_path):
    out = tmp_path / "data"
    assert main(["synth", "--out", str(out), "--categories", "pill", "--templates", "5", *SMALL]) == 0
    assert len(list((out / "SynthIAD" / "pill" / "train" / "good").glob("*.png"))) == 5
    (record,) = [r for k, r in load_mmad(out / "mmad.json").items() if "/good/" in k]
    assert len(record.random_templates) == 5


@pytest.mark.parametrize(
    "extra",
    [
        ["--per-category", "-1"],
        ["--per-category", "0"],
        ["--per-category", "1000000"],
        ["--image-size", "16"],
        ["--categories", "carpet,plastic"],
        ["--seed", "-3"],
        ["--templates", "-1"],
    ],
)
def test_bad_arguments_exit_2_with_one_line_and_create_nothing(tmp_path, capsys, extra):
    out = tmp_path / "data"
    code = main(["synth", "--out", str(out), *extra])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reason-iad: error: ")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_non_empty_output_without_force_is_refused_and_left_untouched(tmp_path, capsys):
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code = main(["synth", "--out", str(out), *SMALL])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--force" in err[0]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_force_replaces_an_earlier_dataset(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["synth", "--out", str(out), "--categories", "wood", *SMALL]) == 0
    assert main(["synth", "--out", str(out), "--categories", "tile", "--force", *SMALL]) == 0
    assert {key.split("/")[1] for key in load_mmad(out / "mmad.json")} == {"tile"}


def test_non_integer_count_is_an_argparse_error(tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["synth", "--out", str(tmp_path / "x"), "--per-category", "many"])
    assert info.value.code == 2


def test_committed_gallery_index_matches_the_files_on_disk():
    index = json.loads((EXAMPLES_DIR / "index.json").read_text(encoding="utf-8"))
    listed = set()
    for entry in index:
        assert entry["dataset"] == "SynthIAD" and entry["category"] in CATEGORIES
        image = Image.open(EXAMPLES_DIR / entry["image"])
        assert image.mode == "RGB" and image.size == (256, 256)
        listed.add(entry["image"])
        if entry["defect"] == "good":
            assert entry["mask"] is None
        else:
            assert entry["defect"] in CATEGORIES[entry["category"]].defect_names
            mask = np.asarray(Image.open(EXAMPLES_DIR / entry["mask"]))
            assert mask.shape == (256, 256) and set(np.unique(mask).tolist()) == {0, 255}
            listed.add(entry["mask"])
        assert entry["questions"]
        for question in entry["questions"]:
            MMADQuestion.model_validate(question)
    on_disk = {str(p.relative_to(EXAMPLES_DIR)) for p in EXAMPLES_DIR.rglob("*.png")}
    assert listed == on_disk
    for category in CATEGORIES:
        kinds = [e["defect"] for e in index if e["category"] == category]
        assert kinds.count("good") == 1 and len(set(kinds)) == 3
    assert (EXAMPLES_DIR / "README.md").is_file()
    assert sum(p.stat().st_size for p in EXAMPLES_DIR.rglob("*") if p.is_file()) < 3 * 1024 * 1024


def test_committed_gallery_is_reproducible_from_its_seed(tmp_path):
    out = tmp_path / "gallery"
    write_gallery(out)
    committed = {str(p.relative_to(EXAMPLES_DIR)): p.read_bytes() for p in EXAMPLES_DIR.rglob("*") if p.is_file()}
    fresh = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert fresh == committed


def test_gallery_command_writes_an_index(tmp_path, capsys):
    out = tmp_path / "gallery"
    assert main(["synth", "--gallery", "--out", str(out), "--categories", "pill", "--image-size", "64"]) == 0
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    assert [e["category"] for e in index] == ["pill"] * 3
    assert "gallery" in capsys.readouterr().out
