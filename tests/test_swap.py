"""The swap test's logic: a model that reads its entries follows swapped titles, one that does not stays put.

The model is the tiny random-weight Qwen2.5-VL, really run; its answer is then replaced by a stand-in's: the
"reader" finds the entry that describes the image's true defect among the prompt's knowledge texts and answers the
option carrying that entry's title; the "memoriser" answers the true defect's catalog title whatever the entries say.
"""

import dataclasses
import hashlib

import pytest

from knowledge_helpers import make_store
from reason_iad.config import AppConfig, KnowledgeConfig
from reason_iad.errors import UserError
from reason_iad.eval.impact import read_impact_set
from reason_iad.eval.swap import defect_of, swap_check
from reason_iad.images import load_image
from reason_iad.knowledge.seed import load_seed_entries
from reason_iad.paths import SEED_KNOWLEDGE_DIR
from reason_iad.pipeline import Pipeline
from reason_iad.synth import generate_dataset


@pytest.fixture(scope="module")
def wood_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("swap-set") / "data"
    generate_dataset(root, per_category=8, image_size=64, categories=["wood"], templates=2)
    return read_impact_set(root, "wood")


def wood_entries():
    return [e for e in load_seed_entries(SEED_KNOWLEDGE_DIR) if e.category == "wood"]


def _key(image) -> str:
    return hashlib.sha256(image.tobytes()).hexdigest()


def stand_in(monkeypatch, eval_set, reads: bool) -> None:
    import reason_iad.pipeline as pipeline_module

    truth = {_key(load_image(i.image_path)): defect_of(i) for i in eval_set.items}
    entries = {e.defect: e for e in wood_entries()}
    real = pipeline_module.Reasoner

    class StandIn:
        def __init__(self, backend, config):
            self.inner = real(backend, config)

        def start(self, request):
            session, result = self.inner.start(request), None
            result = session.result
            defect = truth[_key(request.image)]

            def answer():
                title = entries[defect].title
                if reads:  # the title line of the text that carries the true defect's description
                    text = next(t for t in request.knowledge if entries[defect].text.split(".")[0] in t)
                    title = text.splitlines()[0].strip("<>")
                letter = next((k for k, v in request.question.options if v == title), request.question.letters[0])
                return dataclasses.replace(result(), answer=letter)

            session.result = answer
            return session

    monkeypatch.setattr(pipeline_module, "Reasoner", StandIn)


@pytest.fixture
def pipeline(tiny_backends, tmp_path):
    config = AppConfig(knowledge=KnowledgeConfig(top_k=4))  # every wood entry in every prompt
    return Pipeline(tiny_backends["qwen2_5_vl"], config, make_store(tmp_path / "kb", wood_entries(), False))


def test_a_model_that_reads_its_entries_follows_the_swap(pipeline, wood_set, monkeypatch):
    stand_in(monkeypatch, wood_set, reads=True)
    version = pipeline.store.version
    result = swap_check(pipeline, wood_set, "SynthIAD", "wood", ["hole", "scratch"])
    assert result.questions >= 2 and result.followed == result.questions and result.followed_share == 1.0
    assert result.right_before == result.questions and result.restored == result.questions
    assert result.titles == ("Hole", "Scratch") and "followed the renamed entry (100%)" in result.line()
    assert pipeline.store.version == version  # the swap ran in a scratch copy


def test_a_model_that_ignores_its_entries_does_not(pipeline, wood_set, monkeypatch):
    stand_in(monkeypatch, wood_set, reads=False)
    result = swap_check(pipeline, wood_set, "SynthIAD", "wood", ["hole", "scratch"])
    assert result.followed == 0 and result.right_before == result.questions and result.restored == result.questions


def test_bad_swaps_are_refused(pipeline, wood_set):
    with pytest.raises(UserError, match="two different defect types"):
        swap_check(pipeline, wood_set, "SynthIAD", "wood", ["hole", "hole"])
    with pytest.raises(UserError, match="no knowledge entry for dent"):
        swap_check(pipeline, wood_set, "SynthIAD", "wood", ["hole", "dent"])
    with pytest.raises(UserError, match="no entries for SynthIAD/tile"):
        swap_check(pipeline, wood_set, "SynthIAD", "tile", ["hole", "scratch"])
