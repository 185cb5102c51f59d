"""`infer --card` then `infer --replay` with the embedded default: the same answer and probabilities, exit code 0.

A card whose knowledge version the store does not have replays from the card's own texts; a card whose recorded
probabilities were changed is a mismatch (exit code 1); an image that is not the card's is refused (exit code 2).
"""

import json

import pytest

from reason_iad.cli import main
from reason_iad.memory.exemplars import ExemplarStore
from reason_iad.paths import EXAMPLES_DIR

pytestmark = pytest.mark.slow  # the embedded model, a knowledge base and a memory bank built in tmp_path (~60 s)

IMAGE = EXAMPLES_DIR / "wood" / "liquid.png"


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    folder = tmp_path_factory.mktemp("card")
    path = folder / "card.json"
    argv = [
        "infer",
        str(IMAGE),
        "--db",
        str(folder / "kb"),
        "--category",
        "wood",
        "--dataset",
        "SynthIAD",
        "--auto-template",
        "--steps",
        "4",
        "--card",
        str(path),
    ]
    assert main(argv) == 0
    return path, folder / "kb"


def _replay(path, db, capsys, *extra) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["infer", "--replay", str(path), "--db", str(db), *extra])
    return code, capsys.readouterr().out


def test_replay_of_a_fresh_card_matches(card, capsys):
    path, db = card
    data = json.loads(path.read_text())
    assert data["knowledge"]["entries"] and data["knowledge"]["version"] is not None
    wood = {r.id for r in ExemplarStore(db).records("wood", "SynthIAD")}
    assert data["template"]["source"] in wood and data["anomaly"] is not None  # an exemplar of the category
    code, out = _replay(path, db, capsys)
    assert code == 0, out
    assert "pinned by id at version" in out and out.rstrip().endswith("replay    MATCH")
    assert "\nnote " not in out  # same weights, same memory verdict


def test_a_card_whose_version_is_gone_replays_from_its_own_texts(card, capsys, tmp_path):
    path, db = card
    data = json.loads(path.read_text())
    data["knowledge"]["version"] = 10_000
    moved = tmp_path / "card.json"
    moved.write_text(json.dumps(data))
    code, out = _replay(moved, db, capsys)
    assert code == 0, out
    assert "the card's own texts" in out


def test_changed_probabilities_are_a_mismatch_and_another_image_is_refused(card, capsys, tmp_path):
    path, db = card
    data = json.loads(path.read_text())
    data["result"]["option_probs"] = {k: v + 1e-3 for k, v in data["result"]["option_probs"].items()}
    changed = tmp_path / "card.json"
    changed.write_text(json.dumps(data))
    code, out = _replay(changed, db, capsys)
    assert code == 1 and "MISMATCH" in out
    assert main(["infer", "--replay", str(path), "--image", str(EXAMPLES_DIR / "wood" / "good.png")]) == 2
    assert "pixels differ from the card's" in capsys.readouterr().err
