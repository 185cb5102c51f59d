"""The committed seed knowledge in `knowledge/`: loadable, unique, complete for MMAD's 38 categories."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest

from reason_iad.knowledge.entry import NORMAL_KEY, entry_id, to_domain_knowledge
from reason_iad.knowledge.seed import load_seed_entries, load_seed_file

KNOWLEDGE_DIR = Path(__file__).resolve().parents[1] / "knowledge"

# The real MVTec AD defect folders, which are MMAD's keys for MVTec.
MVTEC_DEFECTS = {
    "bottle": "broken_large broken_small contamination",
    "cable": "bent_wire cable_swap combined cut_inner_insulation cut_outer_insulation missing_cable missing_wire "
    "poke_insulation",
    "capsule": "crack faulty_imprint poke scratch squeeze",
    "carpet": "color cut hole metal_contamination thread",
    "grid": "bent broken glue metal_contamination thread",
    "hazelnut": "crack cut hole print",
    "leather": "color cut fold glue poke",
    "metal_nut": "bent color flip scratch",
    "pill": "color combined contamination crack faulty_imprint pill_type scratch",
    "screw": "manipulated_front scratch_head scratch_neck thread_side thread_top",
    "tile": "crack glue_strip gray_stroke oil rough",
    "toothbrush": "defective",
    "transistor": "bent_lead cut_lead damaged_case misplaced",
    "wood": "color combined hole liquid scratch",
    "zipper": "broken_teeth combined fabric_border fabric_interior rough split_teeth squeezed_teeth",
}

MMAD_CATEGORIES = {
    "MVTec": set(MVTEC_DEFECTS),
    "VisA": set("candle capsules cashew chewinggum fryum macaroni1 macaroni2 pcb1 pcb2 pcb3 pcb4 pipe_fryum".split()),
    "MVTec-LOCO": set("breakfast_box juice_bottle pushpins screw_bag splicing_connectors".split()),
    "GoodsAD": set("cigarette_box drink_bottle drink_can food_bottle food_box food_package".split()),
}

# MMAD's own keys that the seed must provide.
REQUIRED_KEYS = {
    **{("MVTec", c): set(keys.split()) for c, keys in MVTEC_DEFECTS.items()},
    **{("VisA", c): {"bad"} for c in MMAD_CATEGORIES["VisA"]},
    **{("MVTec-LOCO", c): {"structural_anomalies", "logical_anomalies"} for c in MMAD_CATEGORIES["MVTec-LOCO"]},
}


@pytest.fixture(scope="module")
def entries():
    return load_seed_entries(KNOWLEDGE_DIR)


@pytest.fixture(scope="module")
def mmad_entries(entries):
    return [e for e in entries if e.dataset in MMAD_CATEGORIES]


@pytest.mark.parametrize("path", sorted(KNOWLEDGE_DIR.glob("*.jsonl")), ids=lambda p: p.name)
def test_every_knowledge_file_loads(path):
    assert load_seed_file(path), f"{path.name} holds no entries"


def test_ids_are_unique_and_follow_entry_id(entries):
    ids = [e.id for e in entries]
    assert len(ids) == len(set(ids))
    assert all(e.id == entry_id(e.dataset, e.category, e.defect) for e in entries)


@pytest.mark.parametrize("dataset", sorted(MMAD_CATEGORIES))
def test_mmad_dataset_has_exactly_its_categories(mmad_entries, dataset):
    categories = {e.category for e in mmad_entries if e.dataset == dataset}
    assert categories == MMAD_CATEGORIES[dataset]


def test_every_category_has_one_normal_entry_and_two_defects(mmad_entries):
    keys = defaultdict(list)
    for e in mmad_entries:
        keys[(e.dataset, e.category)].append(e.defect)
    assert len(keys) == 38
    for (dataset, category), defects in keys.items():
        assert Counter(defects)[NORMAL_KEY] == 1, f"{dataset}/{category} needs one {NORMAL_KEY!r} entry"
        assert len(defects) - 1 >= 2, f"{dataset}/{category} needs at least two defect entries"


@pytest.mark.parametrize(("dataset", "category"), sorted(REQUIRED_KEYS))
def test_mmad_keys_are_present(mmad_entries, dataset, category):
    keys = {e.defect for e in mmad_entries if (e.dataset, e.category) == (dataset, category)}
    assert REQUIRED_KEYS[(dataset, category)] <= keys


def test_texts_have_a_useful_length(entries):
    too_short = [e.id for e in entries if len(e.text) < 200]
    too_long = [e.id for e in entries if len(e.text) > 8000]
    assert not too_short and not too_long, (too_short, too_long)


def test_project_written_entries_are_attributed(mmad_entries):
    assert {(e.source, e.author) for e in mmad_entries} == {("project-written", "reason-iad")}


def test_domain_knowledge_round_trips_all_entries(entries):
    knowledge = to_domain_knowledge(entries)
    counted = Counter((e.dataset, e.category) for e in entries)
    assert {(d, c): len(keys) for d, cats in knowledge.items() for c, keys in cats.items()} == counted
    for e in entries:
        text = knowledge[e.dataset][e.category][e.defect]
        assert text == f"<{e.title}>\nDescription: {e.text}"
