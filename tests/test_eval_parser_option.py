"""`--parser mmad` scores replies by MMAD's rules; report headings say what each table is."""

from reason_iad.cli import main
from reason_iad.eval.answers import ANSWERS_FILE, AnswerRecord, AnswerWriter
from reason_iad.eval.run_config import EvalRunConfig, write_run_file
from reason_iad.eval.runner import load_scored_run

YES_NO = {"A": "Yes.", "B": "No."}


def _run(tmp_path):
    run = tmp_path / "run"
    write_run_file(run, EvalRunConfig(data=str(tmp_path)), {"questions": 2})
    replies = [("a/b/good/0.png", True, "B", "B"), ("a/b/bad/1.png", False, "A", "qqq zzz")]  # the 2nd: no letter
    with AnswerWriter(run / ANSWERS_FILE) as writer:
        for image, normal, gold, reply in replies:
            writer.append(
                AnswerRecord(
                    id=f"{image}#0",
                    image=image,
                    dataset="a",
                    category="b",
                    subtask="Anomaly Detection",
                    is_normal=normal,
                    correct_answer=gold,
                    readout_answer=gold,
                    parsed_answer=reply if reply in YES_NO else None,
                    options=dict(YES_NO),
                    reply=reply,
                )
            )
    return run


def test_mmad_parser_leaves_no_reply_unparseable(tmp_path):
    run = _run(tmp_path)
    strict = load_scored_run(run, "parsed")
    mmad = load_scored_run(run, "parsed", parser="mmad")
    assert strict.scores.num_unparseable == 1 and mmad.scores.num_unparseable == 0
    assert strict.meta["reply parser"] == "strict" and mmad.meta["reply parser"] == "mmad"
    assert "reply parser" not in load_scored_run(run, "readout").meta


def test_report_cli_takes_the_parser_and_names_its_headings(tmp_path, capsys):
    run = _run(tmp_path)
    assert main(["eval", "report", str(run), "--score", "parsed", "--parser", "mmad"]) == 0
    report = (run / "report.md").read_text()
    assert "by the mmad parser" in report and "- reply parser: mmad" in report
    assert "## Accuracy (%), unparseable replies left out" in report and "dropped (MMAD)" not in report
    capsys.readouterr()
    assert main(["eval", "report", str(run), "--parser", "mmad"]) == 2
    assert "add --score parsed" in capsys.readouterr().err
