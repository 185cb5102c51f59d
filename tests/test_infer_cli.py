import json

import pytest

from reason_iad.cli import main
from reason_iad.paths import EXAMPLES_DIR

BOTTLE = sorted(p for p in (EXAMPLES_DIR / "bottle").glob("*.png") if not p.name.endswith("_mask.png"))[0]


def bottle_exemplars(db) -> set[str]:
    """Ids of the SynthIAD bottle exemplars the database was seeded with."""
    from reason_iad.memory.exemplars import ExemplarStore

    return {r.id for r in ExemplarStore(db).records("bottle", "SynthIAD")}


def test_infer_prints_answer_probabilities_patches_and_timings(capsys):
    assert main(["infer", str(BOTTLE), "--mode", "latent", "--steps", "2", "--latents", "2"]) == 0
    out = capsys.readouterr().out
    assert "demonstration model" in out and "synthetic" in out  # the embedded default says what it is
    for label in ("answer", "options", "rationale", "steps", "timings"):
        assert f"\n{label}" in "\n" + out


def test_infer_retrieves_from_the_knowledge_base_and_picks_a_template(capsys, tmp_path):
    argv = [
        "infer",
        str(BOTTLE),
        "--db",
        str(tmp_path / "kb"),
        "--category",
        "bottle",
        "--dataset",
        "SynthIAD",
        "--auto-template",
        "--steps",
        "1",
        "--latents",
        "1",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "knowledge synthiad/bottle/" in out and "synthiad/bottle/good" in out
    template = next(line for line in out.splitlines() if line.startswith("template  ")).split()[1]
    assert template in bottle_exemplars(tmp_path / "kb")  # the nearest of the category's exemplars


def test_infer_json_has_the_whole_inspection(capsys, tmp_path):
    knowledge = tmp_path / "k.json"
    knowledge.write_text(json.dumps({"SynthIAD": {"bottle": {"good": "Concentric rings.", "crack": "A dark line."}}}))
    argv = [
        "infer",
        str(BOTTLE),
        "--template",
        str(BOTTLE),
        "--category",
        "bottle",
        "--knowledge",
        str(knowledge),
        "--question",
        "Which defect?",
        "--option",
        "A=Crack",
        "--option",
        "B=None",
        "--option",
        "C=Hole",
        "--steps",
        "3",
        "--json",
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["answer"] in "ABC" and set(data["option_probs"]) == {"A", "B", "C"}
    assert len(data["steps"]) == 3 and data["config"]["num_steps"] == 3


def test_a_knowledge_file_keeps_the_memory_evidence_dataset_and_auto_template(capsys, tmp_path):
    """`--knowledge FILE` replaces retrieval only: the embedded model still sees its evidence line and template."""
    knowledge = tmp_path / "k.json"
    knowledge.write_text(json.dumps({"SynthIAD": {"bottle": {"good": "Concentric rings.", "crack": "A dark line."}}}))
    argv = ["infer", str(BOTTLE), "--category", "bottle", "--dataset", "SynthIAD", "--knowledge", str(knowledge)]
    argv += ["--auto-template", "--db", str(tmp_path / "kb"), "--mode", "knowledge", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["anomaly"] is not None and data["anomaly"]["verdict"] in ("normal", "suspicious", "anomalous")
    assert data["template"] in bottle_exemplars(tmp_path / "kb") and data["knowledge"] == []  # the file's texts


def test_infer_json_carries_the_cited_evidence(capsys, tmp_path):
    from reason_iad.types import Evidence

    argv = [
        "infer",
        str(BOTTLE),
        "--db",
        str(tmp_path / "kb"),
        "--category",
        "bottle",
        "--dataset",
        "SynthIAD",
        "--auto-template",
        "--steps",
        "2",
        "--latents",
        "2",
        "--json",
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    evidence = Evidence.from_dict(data["evidence"])
    assert [k.id for k in evidence.knowledge] == [k["id"] for k in data["knowledge"]] and evidence.knowledge
    assert len(evidence.patches) == len(data["injected"])
    assert evidence.anomaly is not None and evidence.anomaly.verdict == data["anomaly"]["verdict"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["infer", "missing.png"], "not found"),
        (["infer", str(BOTTLE), "--option", "A=x"], "without a question"),
        (["infer", str(BOTTLE), "--question", "Q?", "--option", "A=x", "--option", "A=y"], "duplicate"),
        (["infer", str(BOTTLE), "--question", "Q?", "--option", "Ax"], "at least two options"),
        (["infer", str(BOTTLE), "--knowledge", "nope.json"], "cannot read knowledge"),
        (["infer", str(BOTTLE), "--model", "/no/such/model"], "neither a local folder"),
    ],
)
def test_infer_errors_are_one_line_with_exit_code_2(argv, message, capsys, tmp_path):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_unreadable_image_file(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    assert main(["infer", str(bad)]) == 2
    assert "not a readable image" in capsys.readouterr().err
