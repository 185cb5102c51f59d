"""Annotation exports: MMAD runs one-shot with `eval`'s defaults, MVTec's layout, COCO read back by pycocotools."""

import json

import numpy as np
import pytest
from PIL import Image

from reason_iad.annotations import AnnotationStore
from reason_iad.errors import UserError
from reason_iad.exports import EXPORT_FORMATS, export_annotations, export_coco, export_mmad, export_mvtec, rle_encode
from reason_iad.mmad import load_mmad
from reason_iad.synth import render_sample


@pytest.fixture
def annotated(tmp_path):
    store = AnnotationStore(tmp_path / "db")
    hole = render_sample("wood", "hole", 3, 128)
    store.add(hole.image, "defective", "Mine", "wood", author="ana", defect="hole", mask=hole.mask)
    store.add(render_sample("wood", None, 4, 128).image, "normal", "Mine", "wood", author="ana")
    templates = {("Mine", "wood"): [render_sample("wood", None, 50 + i, 128).image for i in range(3)]}
    return store.list(), templates, np.asarray(hole.mask) > 0


def test_mmad_export_lists_the_exemplars_as_train_good_templates(annotated, tmp_path):
    annotations, templates, _ = annotated
    assert export_mmad(annotations, tmp_path / "mmad", templates=templates) == 2
    records = load_mmad(tmp_path / "mmad" / "mmad.json")
    for record in records.values():
        assert record.similar_templates == record.random_templates
        assert [t.split("/")[2:4] for t in record.similar_templates] == [["train", "good"]] * 3
        assert all((tmp_path / "mmad" / t).is_file() for t in record.similar_templates)


@pytest.mark.slow
def test_a_fresh_mmad_export_evaluates_one_shot_with_default_flags(annotated, tmp_path, capsys):
    from reason_iad.cli import main

    annotations, templates, _ = annotated
    export_mmad(annotations, tmp_path / "mmad", templates=templates)
    code = main(
        [
            "eval",
            "--data",
            str(tmp_path / "mmad"),
            "--out",
            str(tmp_path / "run"),
            "--mode",
            "plain",
            "--knowledge",
            "none",
        ]
    )
    assert code == 0, capsys.readouterr().err
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["config"]["shots"] == 1
    answers = (tmp_path / "run" / "answers.jsonl").read_text().splitlines()
    assert len(answers) == sum(len(r.conversation) for r in load_mmad(tmp_path / "mmad" / "mmad.json").values())


def test_mvtec_export_has_mvtecs_folders(annotated, tmp_path):
    annotations, templates, mask = annotated
    export_mvtec(annotations, tmp_path / "mvtec", templates=templates)
    root = tmp_path / "mvtec" / "wood"
    assert sorted(p.name for p in (root / "train" / "good").iterdir()) == ["000.png", "001.png", "002.png"]
    assert (root / "test" / "good" / "000.png").is_file() and (root / "test" / "hole" / "000.png").is_file()
    written = np.asarray(Image.open(root / "ground_truth" / "hole" / "000_mask.png")) > 0
    assert np.array_equal(written, mask)


def test_coco_export_reads_back_with_pycocotools(annotated, tmp_path):
    from pycocotools.coco import COCO

    annotations, _, mask = annotated
    export_coco(annotations, tmp_path / "coco")
    coco = COCO(str(tmp_path / "coco" / "annotations.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["hole"]
    assert len(coco.getImgIds()) == 2
    [instance] = coco.loadAnns(coco.getAnnIds())
    assert np.array_equal(coco.annToMask(instance).astype(bool), mask)
    ys, xs = np.nonzero(mask)
    assert instance["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    assert instance["area"] == int(mask.sum())
    image = coco.loadImgs(instance["image_id"])[0]
    assert (tmp_path / "coco" / image["file_name"]).is_file()


@pytest.mark.parametrize("fill", ["empty", "full", "starts-on", "random"])
def test_rle_matches_pycocotools(fill):
    from pycocotools import mask as coco_mask

    rng = np.random.default_rng(0)
    mask = {
        "empty": np.zeros((7, 5), bool),
        "full": np.ones((7, 5), bool),
        "starts-on": np.eye(7, 5, dtype=bool),
        "random": rng.random((9, 13)) > 0.6,
    }[fill]
    rle = rle_encode(mask)
    compressed = coco_mask.frPyObjects(rle, *rle["size"])
    assert np.array_equal(coco_mask.decode(compressed).astype(bool), mask)
    assert sum(rle["counts"]) == mask.size


def test_bad_exports_are_refused_and_write_nothing(annotated, tmp_path):
    annotations, _, _ = annotated
    with pytest.raises(UserError, match="unknown export format"):
        export_annotations("yolo", annotations, tmp_path / "x")
    with pytest.raises(UserError, match="no annotations"):
        export_annotations("coco", [], tmp_path / "x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    for name in EXPORT_FORMATS:
        with pytest.raises(UserError, match="not empty"):
            export_annotations(name, annotations, tmp_path / "busy")
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["keep.txt"]
    assert not (tmp_path / "x").exists()


def test_an_mvtec_export_reads_back_through_bring_your_own_product(annotated, tmp_path):
    """The zipped MVTec folder becomes a new category with exactly its train/good images as exemplars."""
    import shutil

    from reason_iad.categories import create_category
    from reason_iad.config import AppConfig
    from reason_iad.memory.exemplars import ExemplarStore
    from reason_iad.pipeline import Pipeline

    annotations, templates, _ = annotated
    normals = {("Mine", "wood"): [render_sample("wood", None, 60 + i, 128).image for i in range(6)]}
    export_mvtec(annotations, tmp_path / "mvtec", templates=normals)
    archive = shutil.make_archive(str(tmp_path / "mvtec-export"), "zip", tmp_path / "mvtec")
    pipeline = Pipeline(None, AppConfig(), exemplars=ExemplarStore(tmp_path / "kb"))
    created = create_category(pipeline, "Reread", "wood", [archive], author="ana")
    assert len(created.exemplar_ids) == 6 and len(pipeline.exemplars.records("wood", "Reread")) == 6
    assert created.skipped == ("3 files outside train/good (MVTec layout: test images and masks are not normals)",)
    shutil.copytree(tmp_path / "mvtec" / "wood", tmp_path / "mvtec" / "gear")  # a second category beside it
    archive = shutil.make_archive(str(tmp_path / "two-export"), "zip", tmp_path / "mvtec")
    with pytest.raises(UserError, match="MVTec folders of 2 categories"):
        create_category(pipeline, "Reread", "wood2", [archive], author="ana")
    assert pipeline.exemplars.records("wood2") == []
