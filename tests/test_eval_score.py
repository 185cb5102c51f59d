import csv
import json

import pytest

from reason_iad.eval.answers import AnswerRecord, AnswerWriter, read_answers
from reason_iad.eval.report import ScoredRun, write_comparison, write_run_report
from reason_iad.eval.score import score_answers


def answer(dataset, subtask, correct, given, *, normal=False, parsed="same", n=[0]):  # noqa: B006 - a counter
    n[0] += 1
    category = "bottle" if dataset != "VisA" else "candle"
    image = f"{dataset}/{category}/test/{'good' if normal else 'crack'}/{n[0]:03d}.png"
    return AnswerRecord(
        id=f"{image}#0",
        image=image,
        dataset=dataset,
        category=category,
        subtask=subtask,
        is_normal=normal,
        correct_answer=correct,
        readout_answer=given,
        parsed_answer=given if parsed == "same" else parsed,
    )


def hand_built():
    """Known figures: see the assertions (AD balanced, object tags merged, one unparseable reply)."""
    ad = "Anomaly Detection"
    return [
        # DS-MVTec AD: normal 1/2, anomalous 3/4 -> balanced 62.5 (plain accuracy would be 66.7)
        answer("DS-MVTec", ad, "B", "B", normal=True),
        answer("DS-MVTec", ad, "B", "A", normal=True),
        answer("DS-MVTec", ad, "A", "A"),
        answer("DS-MVTec", ad, "A", "A"),
        answer("DS-MVTec", ad, "A", "A"),
        answer("DS-MVTec", ad, "A", "B"),
        # Defect Classification: an unparseable reply (the read-out letter is right) and then a correct one
        answer("DS-MVTec", "Defect Classification", "C", "C", parsed=None),
        answer("DS-MVTec", "Defect Classification", "D", "D"),
        # Object Structure 1/1 + Object Details 0/1 -> Object Analysis 50
        answer("DS-MVTec", "Object Structure", "A", "A", normal=True),
        answer("DS-MVTec", "Object Details", "A", "C", normal=True),
        # VisA: AD normal 1/1, anomalous 0/1 -> 50; Object Classification 1/1
        answer("VisA", ad, "B", "B", normal=True),
        answer("VisA", ad, "A", "B"),
        answer("VisA", "Object Classification", "B", "B"),
    ]


@pytest.fixture
def records(tmp_path):
    path = tmp_path / "answers.jsonl"
    with AnswerWriter(path) as writer:
        for record in hand_built():
            writer.append(record)
    return read_answers(path).records


def test_balanced_anomaly_detection_merged_objects_and_unparseable_both_ways(records):
    scores = score_answers(records, "parsed")
    assert scores.num_answers == 13 and scores.num_unparseable == 1
    assert scores.unparseable_by_subtask == {"Defect Classification": 1}
    mvtec, visa = scores.dropped.datasets
    assert [mvtec.dataset, visa.dataset] == ["DS-MVTec", "VisA"]  # MMAD's row order
    assert mvtec.accuracy["Anomaly Detection"] == pytest.approx(62.5)
    assert mvtec.normal_accuracy == pytest.approx(50) and mvtec.anomalous_accuracy == pytest.approx(75)
    assert mvtec.detection["Overkill"] == pytest.approx(50) and mvtec.detection["Miss"] == pytest.approx(25)
    assert mvtec.accuracy["Object Analysis"] == pytest.approx(50)
    # dropped (MMAD): the unparseable reply leaves the denominator, and the entry after it still counts
    assert mvtec.accuracy["Defect Classification"] == pytest.approx(100)
    assert mvtec.questions["Defect Classification"] == 1
    assert mvtec.accuracy["Defect Localization"] is None  # no questions: not 0, left out of the mean
    assert mvtec.average == pytest.approx((62.5 + 100 + 50) / 3)
    assert visa.accuracy["Anomaly Detection"] == pytest.approx(50) and visa.average == pytest.approx(75)
    mean = scores.dropped.mean
    assert mean.accuracy["Anomaly Detection"] == pytest.approx(56.25)
    assert mean.average == pytest.approx(((62.5 + 100 + 50) / 3 + 75) / 2)
    wrong = scores.as_wrong.datasets[0]
    assert wrong.accuracy["Defect Classification"] == pytest.approx(50)
    assert wrong.average == pytest.approx((62.5 + 50 + 50) / 3)


def test_read_out_letters_are_never_unparseable(records):
    scores = score_answers(records, "readout")
    assert scores.num_unparseable == 0
    assert scores.dropped.rows == scores.as_wrong.rows
    assert scores.dropped.datasets[0].accuracy["Defect Classification"] == pytest.approx(100)


def test_detection_precision_recall_f1():
    ad = "Anomaly Detection"
    rows = [
        answer("GoodsAD", ad, "A", "A"),
        answer("GoodsAD", ad, "A", "B"),
        answer("GoodsAD", ad, "B", "A", normal=True),
    ]
    row = score_answers(rows).dropped.datasets[0]
    assert row.detection["Recall"] == pytest.approx(50) and row.detection["Precision"] == pytest.approx(50)
    assert row.detection["F1"] == pytest.approx(50)


def test_reports_csv_in_mmad_columns_markdown_heatmap_and_comparison(records, tmp_path):
    run = ScoredRun("full", score_answers(records, "parsed"), {"mode": "full"})
    files = write_run_report(run, tmp_path / "report")
    header = next(csv.reader((tmp_path / "report" / "accuracy.csv").open()))
    assert header == [
        "",
        "Anomaly Detection",
        "Defect Classification",
        "Defect Localization",
        "Defect Description",
        "Defect Analysis",
        "Object Classification",
        "Object Analysis",
        "Average",
        "Recall",
        "Precision",
        "F1",
        "Overkill",
        "Miss",
    ]
    rows = list(csv.reader((tmp_path / "report" / "accuracy.csv").open()))
    assert [r[0] for r in rows[1:]] == ["DS-MVTec", "VisA", "Average"]
    assert float(rows[1][1]) == pytest.approx(62.5) and rows[1][3] == ""
    wrong = list(csv.reader((tmp_path / "report" / "accuracy_unparseable_wrong.csv").open()))
    assert float(wrong[1][2]) == pytest.approx(50)
    assert "letter parsed from the reply" in files.markdown and "unparseable: 1" in files.markdown
    assert "| DS-MVTec | 62.5 | 100.0 | – |" in files.markdown
    assert json.loads((tmp_path / "report" / "scores.json").read_text())["scores"]["num_unparseable"] == 1
    html = (tmp_path / "report" / "heatmap.html").read_text()
    assert "plotly.min.js" in html and (tmp_path / "report" / "plotly.min.js").exists()
    plain = ScoredRun("plain", score_answers(records, "readout"), {"mode": "plain"})
    comparison = write_comparison([plain, run], tmp_path / "cmp")
    assert "| plain |" in comparison.markdown and "| full |" in comparison.markdown
    table = list(csv.reader((tmp_path / "cmp" / "comparison.csv").open()))
    assert [r[0] for r in table[1:]] == ["plain", "full"] and table[0][0] == "run"
    assert (tmp_path / "cmp" / "comparison.html").exists()
