import json
import shutil

import pytest

from reason_iad.errors import UserError
from reason_iad.eval.reader import read_eval_set
from reason_iad.synth import generate_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "data"
    generate_dataset(root, per_category=1, image_size=64, categories=["bottle", "carpet"])
    return root


@pytest.fixture
def copy(dataset, tmp_path):
    target = tmp_path / "data"
    shutil.copytree(dataset, target)
    return target


def test_every_question_becomes_a_typed_item(dataset):
    records = json.loads((dataset / "mmad.json").read_text())
    eval_set = read_eval_set(dataset, knowledge="all")
    assert len(eval_set.items) == sum(len(r["conversation"]) for r in records.values())
    item = eval_set.items[0]
    record = records[item.image]
    assert item.image_path.is_file() and item.template == record["random_templates"][0]
    assert item.template_path.is_file() and item.dataset == "SynthIAD" and item.category in ("bottle", "carpet")
    assert item.is_normal == ("/good/" in item.image) and item.id == f"{item.image}#{item.question_index}"
    assert item.answer == record["conversation"][item.question_index]["Answer"]
    assert [item.id for item in eval_set.items] == sorted(
        {i.id for i in eval_set.items}, key=lambda s: (s.split("#")[0], int(s.split("#")[1]))
    )
    knowledge = json.loads((dataset / "domain_knowledge.json").read_text())["SynthIAD"]["bottle"]
    assert eval_set.knowledge[("SynthIAD", "bottle")] == tuple(knowledge.values())


def test_zero_shot_similar_template_and_no_knowledge(dataset):
    records = json.loads((dataset / "mmad.json").read_text())
    assert all(i.template is None for i in read_eval_set(dataset, shots=0).items)
    similar = read_eval_set(dataset, similar_template=True).items
    assert all(i.template == records[i.image]["similar_templates"][0] for i in similar)
    assert read_eval_set(dataset).knowledge == {}


def test_filters_by_category_and_subtask(dataset):
    subtasks = ["anomaly-detection", "Object Analysis"]
    items = read_eval_set(dataset, categories=["SynthIAD/bottle"], subtasks=subtasks).items
    assert {i.category for i in items} == {"bottle"}
    assert {i.subtask for i in items} == {"Anomaly Detection", "Object Structure", "Object Details"}
    with pytest.raises(UserError, match="unknown category 'tile'; this dataset has: bottle, carpet"):
        read_eval_set(dataset, categories=["tile"])
    with pytest.raises(UserError, match="unknown subtask 'colour'"):
        read_eval_set(dataset, subtasks=["colour"])


def test_missing_images_are_listed_once_or_skipped_and_counted(copy):
    gone = sorted(copy.glob("SynthIAD/bottle/test/*/*.png"))
    for path in gone:
        path.unlink()
    with pytest.raises(UserError, match=r"^2 of 4 images are missing under .*--skip-missing") as err:
        read_eval_set(copy)
    assert "\n" not in str(err.value)
    eval_set = read_eval_set(copy, skip_missing=True)
    assert len(eval_set.skipped_images) == 2 and {i.category for i in eval_set.items} == {"carpet"}
    for template in copy.glob("SynthIAD/carpet/train/good/*.png"):
        template.unlink()
    assert len(read_eval_set(copy, skip_missing=True, shots=0).items) > 0  # zero-shot needs no template
    with pytest.raises(UserError, match="template"):
        read_eval_set(copy, skip_missing=False, categories=["carpet"])


def test_partial_peer_file_only_anomaly_questions_no_templates(tmp_path, dataset):
    image = "Peer/widget/test/good/0.png"
    (tmp_path / "Peer/widget/test/good").mkdir(parents=True)
    shutil.copy(next(dataset.glob("SynthIAD/bottle/test/good/*.png")), tmp_path / image)
    question = {
        "Question": "Is there any defect in the object?",
        "Options": {"A": "Yes.", "B": "No."},
        "Answer": "B",
        "type": "Anomaly Detection",
    }
    (tmp_path / "peer.json").write_text(json.dumps({image: {"conversation": [question]}}))
    items = read_eval_set(tmp_path / "peer.json", shots=0).items
    assert len(items) == 1 and items[0].is_normal and items[0].template is None
    with pytest.raises(UserError, match="no template for one-shot"):
        read_eval_set(tmp_path / "peer.json", shots=1)
    with pytest.raises(UserError, match="domain_knowledge.json"):
        read_eval_set(tmp_path / "peer.json", shots=0, knowledge="all")


def test_knowledge_maps_ds_mvtec_to_mvtec(tmp_path, dataset):
    image = "DS-MVTec/bottle/image/good/0.png"
    (tmp_path / "DS-MVTec/bottle/image/good").mkdir(parents=True)
    shutil.copy(next(dataset.glob("SynthIAD/bottle/test/good/*.png")), tmp_path / image)
    question = {"Question": "Q?", "Options": {"A": "Yes.", "B": "No."}, "Answer": "A", "type": "Anomaly Detection"}
    (tmp_path / "mmad.json").write_text(json.dumps({image: {"conversation": [question]}}))
    (tmp_path / "domain_knowledge.json").write_text(json.dumps({"MVTec": {"bottle": {"good": "Round.", "x": "Y."}}}))
    assert read_eval_set(tmp_path, shots=0, knowledge="all").knowledge == {("DS-MVTec", "bottle"): ("Round.", "Y.")}
    (tmp_path / "domain_knowledge.json").write_text(json.dumps({"MVTec": {"cable": {"good": "x"}}}))
    with pytest.raises(UserError, match="no entries for DS-MVTec/bottle"):
        read_eval_set(tmp_path, shots=0, knowledge="all")


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ("{}", "holds no images"),
        ("[]", "entry"),
        (
            json.dumps(
                {
                    "A/b/c.png": {
                        "conversation": [
                            {
                                "Question": "Q",
                                "Options": {"A": "x", "B": "y"},
                                "Answer": "C",
                                "type": "Anomaly Detection",
                            }
                        ]
                    }
                }
            ),
            "entry A/b/c.png",
        ),
        (
            json.dumps(
                {
                    "../b/c.png": {
                        "conversation": [
                            {
                                "Question": "Q",
                                "Options": {"A": "x", "B": "y"},
                                "Answer": "A",
                                "type": "Anomaly Detection",
                            }
                        ]
                    }
                }
            ),
            "without '..'",
        ),
    ],
)
def test_bad_files_are_one_line_user_errors(tmp_path, content, message):
    (tmp_path / "mmad.json").write_text(content)
    with pytest.raises(UserError, match=message) as err:
        read_eval_set(tmp_path, shots=0)
    assert "\n" not in str(err.value)


def test_missing_root_and_missing_file(tmp_path):
    with pytest.raises(UserError, match="data root not found"):
        read_eval_set(tmp_path / "nope")
    with pytest.raises(UserError, match="has no mmad.json"):
        read_eval_set(tmp_path)
