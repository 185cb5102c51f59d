"""The shipped embedded models: offline loading, model cards that match the files, and real behaviour."""

import time

import numpy as np
import pytest
from PIL import Image

from reason_iad.backends.embedded import CLIP_DIR, EMBEDDED_NAME, INSPECTOR_DIR, inspector_available
from reason_iad.config import BackendConfig, ReasoningConfig
from reason_iad.memory.evidence import evidence_line
from reason_iad.paths import EXAMPLES_DIR
from reason_iad.reasoning.engine import InspectionRequest, Reasoner
from reason_iad.reasoning.prompt import Question
from reason_iad.synth.shapes import region_of
from reason_iad.training.card import card_hashes, sha256, weight_files

pytestmark = pytest.mark.skipif(not inspector_available(), reason="trained inspector assets are not present")
NORMAL_EXAMPLE, DEFECT_EXAMPLE = "pill/good.png", "screw/scratch_head.png"
OBJECT_QUESTION = Question(
    "What kind of object or material is shown in the image?",
    (("A", "Bottle"), ("B", "Pill"), ("C", "Carpet"), ("D", "Screw")),
)


@pytest.fixture(scope="module")
def backend():
    from reason_iad.backends.embedded import load_embedded

    return load_embedded(BackendConfig())


@pytest.mark.parametrize("folder", [INSPECTOR_DIR, CLIP_DIR], ids=["inspector", "clip"])
def test_model_card_lists_every_weight_file_with_its_hash(folder):
    listed = card_hashes(folder)
    files = weight_files(folder)
    assert files and sorted(listed) == [p.name for p in files]
    for path in files:
        assert listed[path.name] == (path.stat().st_size, sha256(path))


def test_assets_fit_the_size_budget():
    total = sum(p.stat().st_size for folder in (INSPECTOR_DIR, CLIP_DIR) for p in folder.rglob("*") if p.is_file())
    assert total <= 40 * 1024 * 1024


def test_inspector_loads_offline_quickly_and_names_itself():
    from reason_iad.backends.embedded import load_embedded

    started = time.perf_counter()
    loaded = load_embedded(BackendConfig())
    assert time.perf_counter() - started < 10.0  # < 5 s measured when the machine is not shared
    assert loaded.name == EMBEDDED_NAME and "demonstration" in loaded.name and "synthetic" in loaded.name


def _ask(backend, image_name: str, question: Question, evidence: str) -> dict:
    image = Image.open(EXAMPLES_DIR / image_name).convert("RGB")
    template = Image.open(EXAMPLES_DIR / image_name.split("/")[0] / "good.png").convert("RGB")
    config = ReasoningConfig(mode="plain", readout="likelihood", max_new_tokens=24)
    result = Reasoner(backend, config).run(InspectionRequest(image, question, template, evidence=evidence))
    return {"answer": result.answer_text, "probs": result.option_probs, "rationale": result.rationale}


def _defect_evidence() -> str:
    mask = np.asarray(Image.open(EXAMPLES_DIR / DEFECT_EXAMPLE.replace(".png", "_mask.png")).convert("L")) > 127
    return evidence_line("anomalous", region_of(mask), 0.93)


def test_defect_probability_rises_for_the_defective_example_with_its_evidence(backend):
    normal = _ask(backend, NORMAL_EXAMPLE, Question.anomaly(), evidence_line("normal", "center", 0.12))
    defective = _ask(backend, DEFECT_EXAMPLE, Question.anomaly(), _defect_evidence())
    assert normal["answer"] == "No." and defective["probs"]["A"] > normal["probs"]["A"] + 0.1  # A is "Yes."


def test_object_answer_follows_the_image_for_a_normal_and_a_defective_example(backend):
    normal = _ask(backend, NORMAL_EXAMPLE, OBJECT_QUESTION, evidence_line("normal", "center", 0.12))
    defective = _ask(backend, DEFECT_EXAMPLE, OBJECT_QUESTION, _defect_evidence())
    assert normal["answer"] == "Pill" and defective["answer"] == "Screw"
    assert normal["probs"]["B"] > 0.5 and defective["probs"]["D"] > 0.5


def test_defect_location_follows_the_evidence_region(backend):
    from reason_iad.synth.shapes import REGIONS

    mask = np.asarray(Image.open(EXAMPLES_DIR / DEFECT_EXAMPLE.replace(".png", "_mask.png")).convert("L")) > 127
    truth = region_of(mask).capitalize()
    others = [r.capitalize() for r in REGIONS if r.capitalize() != truth][:3]
    options = tuple(zip("ABCD", sorted([truth, *others]), strict=True))
    where = Question("There is a defect in the object. Where is the defect located in the image?", options)
    assert _ask(backend, DEFECT_EXAMPLE, where, _defect_evidence())["answer"] == truth


def test_rationale_names_the_object_of_each_example(backend):
    assert "pill" in _ask(backend, NORMAL_EXAMPLE, Question.anomaly(), "")["rationale"].lower()
    assert "screw" in _ask(backend, DEFECT_EXAMPLE, Question.anomaly(), _defect_evidence())["rationale"].lower()


def test_tiny_clip_retrieves_the_defect_entry_offline():
    from reason_iad.knowledge.embedders import make_embedder
    from reason_iad.training.clip import knowledge_bodies

    embedder = make_embedder("tiny_clip")
    bodies, index = knowledge_bodies()
    keys = list(index)
    image = Image.open(EXAMPLES_DIR / DEFECT_EXAMPLE).convert("RGB")
    scores = embedder.embed_texts(bodies) @ embedder.embed_images([image])[0]
    ranked = [keys[i] for i in np.argsort(-scores)]
    assert ("screw", "scratch_head") in ranked[:3] and embedder.name == "tiny_clip"
