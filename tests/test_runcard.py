"""Run cards without a model: what a card holds, how malformed cards are refused, model hashes, the comparison."""

import copy
import json

import pytest
from PIL import Image

from reason_iad.cli import main
from reason_iad.errors import UserError
from reason_iad.reasoning.prompt import Question
from reason_iad.replay import Replay
from reason_iad.runcard import (
    image_sha256,
    model_fingerprint,
    read_run_card,
    run_card,
    validate_run_card,
    write_run_card,
)
from reason_iad.types import AnomalySummary, InjectedPatch, Inspection, ReasoningStep, Timings, UsedKnowledge

PATCH = InjectedPatch(token_index=3, box=(0.0, 0.0, 16.0, 16.0), latent=1, step=1, gain=0.02)
STEP = ReasoningStep(
    step=1,
    reward=0.9,
    reward_components={"answer": 0.8},
    latent_entropy=(0.5,),
    option_probs={"A": 0.7, "B": 0.3},
    best_reward=0.9,
    injected=(PATCH,),
    new_patches=(PATCH,),
    sigma=0.1,
    elapsed_ms=5.0,
)
INSPECTION = Inspection(
    answer="A",
    answer_text="Yes.",
    option_probs={"A": 0.7, "B": 0.3},
    rationale="A stain at the top.",
    mode="full",
    model="tiny",
    steps=(STEP,),
    best_step=1,
    injected=(PATCH,),
    attention_map=((0.5,),),
    timings=Timings(1.0, 2.0, 2.0, 1.0, 4.0),
    config={"mode": "full", "seed": 42, "num_steps": 1},
    knowledge=(
        UsedKnowledge("test/wood/stain", "Stain", 0.8, False),
        UsedKnowledge("test/wood/good", "Good", 1.0, False),
    ),
    knowledge_version=7,
    template="test/wood/0000-1",
    anomaly=AnomalySummary(0.9, 30.0, "anomalous", "top left", (0, 0, 8, 8), "text"),
)
IMAGE = Image.new("RGB", (32, 24), (200, 100, 50))
FINGERPRINT = {"weights_sha256": "a" * 64, "config_sha256": "b" * 64, "hashed": "files", "files": {}}
BACKEND = {"model": "embedded", "quantization": "none", "device": "auto", "dtype": "auto"}


def make_card() -> dict:
    texts = {"test/wood/stain": "<Stain>\nDescription: A red blotch.", "test/wood/good": "<Good>\nDescription: Even."}
    return run_card(
        INSPECTION,
        IMAGE,
        Question.anomaly(),
        "wood",
        "Test",
        backend=BACKEND,
        fingerprint=FINGERPRINT,
        knowledge_texts=texts,
        knowledge_db="/kb",
        template=None,
        image_path="q.png",
    )


def test_a_card_holds_model_settings_knowledge_input_and_result(tmp_path):
    card = make_card()
    assert card["model"]["name"] == "tiny" and card["model"]["weights_sha256"] == "a" * 64
    assert card["reasoning"] == INSPECTION.config
    assert card["knowledge"]["version"] == 7 and card["knowledge"]["source"] == "store"
    assert [(e["id"], e["text"][:7]) for e in card["knowledge"]["entries"]] == [
        ("test/wood/stain", "<Stain>"),
        ("test/wood/good", "<Good>\n"),
    ]
    assert card["input"]["image"]["sha256"] == image_sha256(IMAGE) and card["input"]["options"] == {
        "A": "Yes.",
        "B": "No.",
    }
    assert card["kept_patches"][0]["token_index"] == 3 and card["anomaly"]["verdict"] == "anomalous"
    assert len(card["steps"]) == 1 and card["timings"]["total_ms"] == 4.0 and card["template"]["source"]
    read = read_run_card(write_run_card(card, tmp_path / "card.json"))
    assert (read.answer, read.option_probs, read.knowledge_version) == ("A", {"A": 0.7, "B": 0.3}, 7)
    assert [e.id for e in read.entries] == ["test/wood/stain", "test/wood/good"] and read.category == "wood"


def test_knowledge_from_a_file_has_no_ids_and_a_missing_text_is_refused():
    card = run_card(
        INSPECTION,
        IMAGE,
        Question.anomaly(),
        backend=BACKEND,
        fingerprint=FINGERPRINT,
        knowledge_texts=("A dark line.",),
    )
    assert card["knowledge"]["source"] == "file" and card["knowledge"]["entries"][0]["id"] is None
    with pytest.raises(UserError, match="no text for the knowledge entries"):
        run_card(
            INSPECTION,
            IMAGE,
            Question.anomaly(),
            backend=BACKEND,
            fingerprint=FINGERPRINT,
            knowledge_texts={"test/wood/stain": "x"},
        )


def test_the_image_hash_is_of_the_pixels():
    assert image_sha256(IMAGE) == image_sha256(IMAGE.convert("RGBA"))
    assert image_sha256(IMAGE) != image_sha256(Image.new("RGB", (32, 24), (200, 100, 51)))


def _broken(path: str, value):
    card = copy.deepcopy(make_card())
    *parents, last = path.split(".")
    target = card
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return card


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("format", "something-else", "not a run card"),
        ("version", 99, "version 99 is not supported"),
        ("model", KeyError, "card.model is missing"),
        ("model.weights_sha256", "abc", "not a SHA-256"),
        ("input.image.sha256", 5, "input.image.sha256 is missing or not a str"),
        ("input.options", {"A": "Yes."}, "lettered A, B"),
        ("input.options", {"B": "x", "A": "y"}, "lettered A, B"),
        ("input.question", " ", "input.question is empty"),
        ("knowledge.source", "web", "knowledge.source must be one of"),
        ("knowledge.version", -1, "non-negative integer"),
        ("knowledge.entries", [{"id": "x"}], r"knowledge.entries\[0\].text"),
        ("result.option_probs", {"A": "high"}, "finite numbers"),
        ("result.option_probs", {"A": float("nan")}, "finite numbers"),
    ],
)
def test_malformed_cards_are_refused_clearly_and_never_written(path, value, message, tmp_path):
    card = _broken(path, value)
    with pytest.raises(UserError, match=message):
        validate_run_card(card)
    with pytest.raises(UserError, match=message):
        write_run_card(card, tmp_path / "card.json")
    assert not (tmp_path / "card.json").exists()


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe", json.dumps({"format": "x"}).encode()])
def test_replaying_a_malformed_card_is_one_line_exit_code_2(content, tmp_path, capsys):
    bad = tmp_path / "card.json"
    bad.write_bytes(content)
    assert main(["infer", "--replay", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("reason-iad: error: ") and str(bad) in err


def test_infer_without_an_image_or_with_a_card_in_a_missing_folder_is_refused(tmp_path, capsys):
    assert main(["infer"]) == 2
    assert "needs an IMAGE" in capsys.readouterr().err
    assert main(["infer", "x.png", "--card", str(tmp_path / "no" / "card.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_model_fingerprint_hashes_weights_and_config_separately(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"weights-1")
    first = model_fingerprint("m", tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"weights-2")
    second = model_fingerprint("m", tmp_path)
    assert first["config_sha256"] == second["config_sha256"] and first["weights_sha256"] != second["weights_sha256"]
    assert set(second["files"]) == {"model.safetensors"} and second["hashed"] == "files"
    assert model_fingerprint("org/model", None)["hashed"] == "spec"


def test_a_replay_matches_only_with_the_same_answer_and_probabilities_within_the_tolerance():
    def replayed(answer, probs):
        return Replay(INSPECTION, "none", (), answer, probs)

    assert replayed("A", {"A": 0.7 + 5e-6, "B": 0.3}).matches
    assert not replayed("A", {"A": 0.7 + 2e-5, "B": 0.3}).matches
    assert not replayed("B", {"A": 0.7, "B": 0.3}).matches
    assert not replayed("A", {"A": 0.7, "B": 0.3, "C": 0.0001}).matches
    assert replayed("A", {"A": 0.7, "B": 0.3}).lines()[-1] == "replay    MATCH"


def test_the_studio_gets_a_card_file_with_the_store_texts_at_the_inspection_version(tmp_path):
    import dataclasses
    from types import SimpleNamespace

    from knowledge_helpers import make_store
    from reason_iad.config import AppConfig, BackendConfig
    from reason_iad.replay import studio_run_card

    store = make_store(tmp_path / "kb")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    config = AppConfig(backend=BackendConfig(model=str(tmp_path / "model")))
    pipeline = SimpleNamespace(config=config, store=store, exemplars=None)
    inspection = dataclasses.replace(INSPECTION, knowledge_version=store.version)
    card = read_run_card(
        studio_run_card(pipeline, inspection, IMAGE, Question.anomaly(), "wood", "Test", folder=tmp_path)
    )
    stain = store.get("test/wood/stain").entry.mmad_text
    assert [e.text for e in card.entries][0] == stain and card.knowledge_version == store.version
    assert card.model == str(tmp_path / "model") and card.data["model"]["config_sha256"] != "b" * 64
