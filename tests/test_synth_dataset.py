"""Whole SynthIAD datasets: MMAD validity, determinism, balanced answers, templates, knowledge, safe writing."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reason_iad.errors import UserError
from reason_iad.knowledge.entry import entry_id
from reason_iad.knowledge.seed import load_seed_file
from reason_iad.mmad import SUBTASKS, is_normal_image, load_mmad
from reason_iad.paths import SEED_KNOWLEDGE_DIR
from reason_iad.synth import CATEGORIES, generate_dataset
from reason_iad.synth import writer as writer_module
from reason_iad.synth.shapes import region_of

PER_CATEGORY = 3
SIZE = 64


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "data"
    generate_dataset(out, seed=3, per_category=PER_CATEGORY, image_size=SIZE)
    return out


@pytest.fixture(scope="module")
def records(dataset):
    return load_mmad(dataset / "mmad.json")


def test_summary_counts_match_the_files(tmp_path):
    calls = []
    summary = generate_dataset(
        tmp_path / "d",
        seed=1,
        per_category=4,
        image_size=SIZE,
        categories=["pill", "tile"],
        progress=lambda d, t: calls.append((d, t)),
    )
    records = load_mmad(tmp_path / "d" / "mmad.json")
    assert summary.num_images == len(records) == 2 * 2 * 4
    assert summary.num_masks == len(list((tmp_path / "d").rglob("*_mask.png"))) == 2 * 4
    assert summary.num_templates == len(list((tmp_path / "d").rglob("train/good/*.png"))) == 2 * 3
    assert summary.num_questions == sum(len(r.conversation) for r in records.values())
    assert sum(summary.questions_per_subtask.values()) == summary.num_questions
    assert calls[-1][0] == calls[-1][1] == summary.num_images + summary.num_templates
    assert summary.out_dir == (tmp_path / "d").resolve()


def test_same_seed_gives_identical_files_and_another_seed_differs(dataset, tmp_path):
    again = tmp_path / "again"
    generate_dataset(again, seed=3, per_category=PER_CATEGORY, image_size=SIZE)
    assert _files(again) == _files(dataset)
    other = tmp_path / "other"
    generate_dataset(other, seed=4, per_category=PER_CATEGORY, image_size=SIZE)
    first, second = _files(dataset), _files(other)
    assert first.keys() == second.keys()
    assert sum(first[k] != second[k] for k in first) > len(first) // 2


def test_worker_processes_write_the_same_bytes(dataset, tmp_path):
    parallel = tmp_path / "parallel"
    generate_dataset(parallel, seed=3, per_category=PER_CATEGORY, image_size=SIZE, workers=2)
    assert _files(parallel) == _files(dataset)


def test_records_point_at_existing_images_masks_and_templates(dataset, records):
    assert len(records) == len(CATEGORIES) * 2 * PER_CATEGORY
    for key, record in records.items():
        assert (dataset / key).is_file()
        category = key.split("/")[1]
        templates = sorted(
            str(p.relative_to(dataset)) for p in (dataset / "SynthIAD" / category / "train" / "good").glob("*.png")
        )
        assert len(templates) >= 3
        assert sorted(record.similar_templates) == templates
        assert sorted(record.random_templates) == templates
        if is_normal_image(key):
            assert record.mask_path == ""
        else:
            mask = np.asarray(Image.open(dataset / record.mask_path))
            assert mask.shape == (SIZE, SIZE) and mask.max() == 255


def test_similar_templates_come_closest_first(dataset, records):
    def small(path):
        return np.asarray(Image.open(dataset / path).convert("RGB").resize((16, 16), Image.Resampling.BOX), dtype=float)

    for key, record in list(records.items())[:: max(1, len(records) // 8)]:
        query = small(key)
        distances = [np.square(small(t) - query).mean() for t in record.similar_templates]
        assert distances == sorted(distances)


def test_every_subtask_appears_and_defect_questions_only_for_defects(records):
    seen = Counter(q.type for r in records.values() for q in r.conversation)
    assert set(seen) == set(SUBTASKS)
    for key, record in records.items():
        types = {q.type for q in record.conversation}
        has_defect_questions = bool(types & {"Defect Classification", "Defect Localization"})
        assert has_defect_questions == (not is_normal_image(key))


def test_answers_follow_the_ground_truth(dataset, records):
    for key, record in records.items():
        category, folder = key.split("/")[1], key.split("/")[3]
        answers = {q.type: q.options[q.answer] for q in record.conversation}
        assert answers["Anomaly Detection"] == ("No." if folder == "good" else "Yes.")
        assert answers["Object Classification"] == CATEGORIES[category].title
        if folder != "good":
            assert answers["Defect Classification"] == CATEGORIES[category].defect(folder).title
            mask = np.asarray(Image.open(dataset / record.mask_path)) > 0
            assert answers["Defect Localization"].lower() == region_of(mask)


def test_answer_letters_are_balanced_per_question_type(tmp_path):
    generate_dataset(tmp_path / "d", seed=9, per_category=6, image_size=SIZE)
    letters: dict[str, Counter] = defaultdict(Counter)
    for record in load_mmad(tmp_path / "d" / "mmad.json").values():
        for q in record.conversation:
            assert len(q.options) >= 2
            letters[(q.type, len(q.options))][q.answer] += 1
    for (subtask, options), counts in letters.items():
        expected = sum(counts.values()) / options
        assert len(counts) == options, f"{subtask}: some letter never answers"
        assert max(counts.values()) <= 1.5 * expected, f"{subtask}: letters unbalanced {dict(counts)}"


def test_distractors_are_same_kind_and_distinct(records):
    titles = {c.title for c in CATEGORIES.values()}
    defect_titles = {d.title for c in CATEGORIES.values() for d in c.defects}
    for record in records.values():
        for q in record.conversation:
            assert len(set(q.options.values())) == len(q.options)
            if q.type == "Object Classification":
                assert set(q.options.values()) <= titles
            if q.type == "Defect Classification":
                assert set(q.options.values()) <= defect_titles


def test_domain_knowledge_covers_every_generated_category(dataset):
    knowledge = json.loads((dataset / "domain_knowledge.json").read_text(encoding="utf-8"))
    assert set(knowledge) == {"SynthIAD"}
    for name, category in CATEGORIES.items():
        assert set(knowledge["SynthIAD"][name]) == {"good", *category.defect_names}


def test_seed_knowledge_file_covers_the_catalog():
    entries = load_seed_file(SEED_KNOWLEDGE_DIR / "synth-iad.jsonl")
    keys = {(e.category, e.defect) for e in entries}
    expected = {(c.name, d) for c in CATEGORIES.values() for d in ("good", *c.defect_names)}
    assert keys == expected and len(entries) == len(expected)
    for e in entries:
        assert e.id == entry_id("SynthIAD", e.category, e.defect)
        assert e.dataset == "SynthIAD" and e.source == "project-written" and e.author == "reason-iad"
        assert 3 <= e.text.count(". ") + 1 <= 8


def test_seed_knowledge_states_each_defects_cause_and_consequence():
    # Defect Analysis asks for the cause or consequence: the curated entry is where a reader can find it
    entries = {(e.category, e.defect): e.text for e in load_seed_file(SEED_KNOWLEDGE_DIR / "synth-iad.jsonl")}
    for category in CATEGORIES.values():
        assert "cause" not in entries[(category.name, "good")].lower()
        for defect in category.defects:
            assert entries[(category.name, defect.name)].endswith(f"Likely cause and consequence: {defect.analysis}.")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"per_category": 0},
        {"per_category": -2},
        {"per_category": 10001},
        {"image_size": 32},
        {"image_size": 4096},
        {"seed": -1},
        {"categories": ["carpet", "plastic"]},
        {"categories": []},
    ],
)
def test_bad_arguments_raise_user_error_and_write_nothing(tmp_path, kwargs):
    with pytest.raises(UserError):
        generate_dataset(tmp_path / "out", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_non_empty_folder_needs_force_and_force_only_replaces_our_output(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not empty"):
        generate_dataset(out, per_category=1, image_size=SIZE, categories=["pill"])
    with pytest.raises(UserError, match="refusing"):
        generate_dataset(out, per_category=1, image_size=SIZE, categories=["pill"], force=True)
    assert (out / "notes.txt").read_text() == "keep me"
    (out / "notes.txt").unlink()
    generate_dataset(out, per_category=1, image_size=SIZE, categories=["pill"])
    generate_dataset(out, per_category=1, image_size=SIZE, categories=["screw"], force=True)
    assert (out / "SynthIAD" / "screw").is_dir() and not (out / "SynthIAD" / "pill").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failure_leaves_nothing_behind_and_keeps_the_old_output(tmp_path, monkeypatch):
    out = tmp_path / "out"
    generate_dataset(out, per_category=1, image_size=SIZE, categories=["pill"])
    before = _files(out)
    real_run_job, calls = writer_module.run_job, []

    def failing_run_job(job, root):
        calls.append(job)
        if len(calls) > 3:
            raise RuntimeError("disk on fire")
        return real_run_job(job, root)

    monkeypatch.setattr(writer_module, "run_job", failing_run_job)
    with pytest.raises(RuntimeError, match="disk on fire"):
        generate_dataset(out, per_category=2, image_size=SIZE, categories=["tile"], force=True)
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(RuntimeError):
        generate_dataset(tmp_path / "fresh", per_category=2, image_size=SIZE, categories=["tile"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_output_inside_a_file_is_a_user_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(UserError):
        generate_dataset(blocker, per_category=1, image_size=SIZE)
    with pytest.raises(UserError):
        generate_dataset(blocker / "sub", per_category=1, image_size=SIZE)
    assert blocker.read_text() == "x"
