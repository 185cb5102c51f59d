"""`kb impact`: a set's questions answered under two knowledge versions, cached, compared; the store never changes.

The model is a tiny random-weight Qwen2.5-VL, really run for every prompt; its answer letter is then replaced by one
derived from the knowledge texts in the prompt (`impact_helpers.knowledge_reading_model`), so that an edit can flip
answers and the test knows which letter each version must give. Retrieval ranks entries by the question's meaning
(no image embedder), so different questions retrieve different entries and an edit changes some retrievals, not all.
"""

import json

import pytest
from impact_helpers import carpet_entries, knowledge_reading_model, letter_for

from knowledge_helpers import make_store
from reason_iad.cli import main
from reason_iad.config import AppConfig
from reason_iad.errors import UserError
from reason_iad.eval.impact import check_impact, default_versions, read_impact_set, resolve_version
from reason_iad.eval.impact_cache import CACHE_TABLE, AnswerCache
from reason_iad.images import load_image
from reason_iad.pipeline import Pipeline
from reason_iad.synth import generate_dataset


@pytest.fixture
def model_calls(monkeypatch):
    return knowledge_reading_model(monkeypatch)


@pytest.fixture(scope="module")
def carpet_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("impact-set") / "data"
    generate_dataset(root, per_category=2, image_size=96, categories=["carpet"], templates=4)
    return root


@pytest.fixture
def pipeline(tiny_backends, tmp_path):
    return Pipeline(tiny_backends["qwen2_5_vl"], AppConfig(), make_store(tmp_path / "kb", carpet_entries(), False))


HOLE = "synthiad/carpet/hole"
QUESTION_LIKE = "Where in the image is the defect? A hole shows the dark backing."  # ranks high for some questions


def swap_entries(store, a="synthiad/carpet/hole", b="synthiad/carpet/cut") -> int:
    """Swap two defect entries' titles and texts (a prompt lists the same texts unless the ranking moves)."""
    first, second = store.get(a).entry, store.get(b).entry
    store.update(a, "ana", title=second.title, text=second.text)
    return store.update(b, "ana", title=first.title, text=first.text)


def retrieved(pipeline, eval_set, version) -> dict:
    """{question id: prompt texts} under `version`, computed independently with `Pipeline.retrieval`."""
    out = {}
    for item in eval_set.items:
        image = load_image(item.image_path)
        out[item.id] = pipeline.retrieval(image, item.category, item.dataset, item.question, version=version).texts
    return out


def state(store) -> tuple:
    return store.version, store.changes(), [s.entry for s in store.list()]


def test_accuracies_flips_and_the_cache(pipeline, carpet_set, model_calls):
    store = pipeline.store
    first = store.version
    second = store.update(HOLE, "ana", text=QUESTION_LIKE)
    eval_set = read_impact_set(carpet_set, "carpet")
    before, after = retrieved(pipeline, eval_set, first), retrieved(pipeline, eval_set, second)
    kept = state(store)

    report = check_impact(pipeline, eval_set, first, second)

    by_id = {item.id: item for item in eval_set.items}
    assert [q.id for q in report.questions] == list(by_id)
    for q in report.questions:  # each version's answer is the one its own retrieval leads to
        assert q.before == letter_for(before[q.id], by_id[q.id].question)
        assert q.after == letter_for(after[q.id], by_id[q.id].question)
        assert q.same_knowledge == (before[q.id] == after[q.id])
    changed = sum(before[i] != after[i] for i in by_id)
    assert 0 < changed < len(by_id)
    assert report.answered == len(model_calls) == len(by_id) + changed  # identical retrievals answered once
    assert [q.id for q in report.flips] == [q.id for q in report.questions if q.before != q.after]
    assert report.flips and all(not q.same_knowledge for q in report.flips)
    data = report.to_dict()
    for row in data["subtasks"]:  # an independent recount from the listed answers
        listed = [q for q in data["questions"] if row["subtask"] in ("all", q["subtask"])]
        assert row["questions"] == len(listed)
        assert row["before_accuracy"] == sum(q["before"] == q["correct"] for q in listed) / len(listed)
        assert row["after_accuracy"] == sum(q["after"] == q["correct"] for q in listed) / len(listed)
    assert data["subtasks"][-1]["subtask"] == "all" and data["subtasks"][-1]["questions"] == len(by_id)
    assert state(store) == kept  # the knowledge base is untouched

    model_calls.clear()
    again = check_impact(pipeline, eval_set, first, second)
    assert model_calls == [] and again.answered == 0 and again.cached == report.answered
    assert again.questions == report.questions

    third = store.update(HOLE, "bo", text="Rare.")  # another edit of the same entry
    latest = retrieved(pipeline, eval_set, third)
    rerun = sum(latest[i] not in (before[i], after[i]) for i in by_id)
    assert 0 < rerun < len(by_id)
    kept = state(store)
    later = check_impact(pipeline, eval_set, first, third)
    assert later.answered == len(model_calls) == rerun  # only what the edit can change runs again
    assert {r.question.text for r in model_calls} <= {by_id[i].question.text for i in by_id if latest[i] != after[i]}
    assert state(store) == kept


def test_the_same_prompt_under_both_versions_is_answered_once(pipeline, carpet_set, model_calls):
    eval_set = read_impact_set(carpet_set, "carpet")
    version = pipeline.store.version
    report = check_impact(pipeline, eval_set, version, version)
    assert report.answered == len(model_calls) == len(eval_set.items)
    assert not report.flips and all(q.same_knowledge for q in report.questions)
    swapped = swap_entries(pipeline.store)  # other ids hold the texts now; every prompt reads as before
    model_calls.clear()
    report = check_impact(pipeline, eval_set, version, swapped)
    assert model_calls == [] and report.cached == len(eval_set.items) and not report.flips


def test_versions_by_number_tag_and_default(pipeline):
    store = pipeline.store
    seeded = store.version
    edited = swap_entries(store)
    store.tag("before-swap", seeded)
    assert resolve_version(store, "before-swap") == seeded and resolve_version(store, str(edited)) == edited
    assert default_versions(store) == (store.changes()[-2].version, edited)
    for bad, message in (("999", "does not exist"), ("nope", "unknown knowledge version")):
        with pytest.raises(UserError, match=message):
            resolve_version(store, bad)


def test_bad_input_is_refused_and_nothing_is_written(pipeline, carpet_set, tmp_path, model_calls):
    store = pipeline.store
    kept = state(store)
    eval_set = read_impact_set(carpet_set, "carpet")
    with pytest.raises(UserError, match="version 99 does not exist"):
        check_impact(pipeline, eval_set, store.version, 99)
    with pytest.raises(UserError, match="unknown category 'wood'"):
        read_impact_set(carpet_set, "wood")
    with pytest.raises(UserError, match="mode knowledge or full"):
        check_impact(pipeline, eval_set, store.version, store.version, mode="plain")
    other = Pipeline(pipeline.backend, AppConfig(), make_store(tmp_path / "other"))  # no carpet entries
    with pytest.raises(UserError, match="no entries for SynthIAD/carpet"):
        check_impact(other, eval_set, other.store.version, other.store.version)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "mmad.json").write_text((carpet_set / "mmad.json").read_text())
    with pytest.raises(UserError, match="missing"):
        read_impact_set(bare, "carpet")
    assert model_calls == [] and state(store) == kept
    assert AnswerCache(store.uri).table is None and CACHE_TABLE not in store.db.list_tables().tables


# ---------------------------------------------------------------------------------------------- the CLI
@pytest.fixture
def kb(tmp_path):
    def run(*args):
        return main(
            ["kb", *args, "--db", str(tmp_path / "kb"), "--text-embedder", "fake:32", "--image-embedder", "none"]
        )

    return run


def test_the_cli_reports_writes_files_and_reuses_its_cache(kb, tmp_path, carpet_set, tiny_model_dirs, capsys):
    model_dir = str(tiny_model_dirs["qwen2_5_vl"])
    assert kb("list", "--category", "carpet") == 0  # creates and seeds the knowledge base
    assert kb("edit", "synthiad/carpet/hole", "--text", "A long, straight, dark slit.", "--author", "ana") == 0
    capsys.readouterr()
    assert kb("versions") == 0
    versions = [line.split()[0].lstrip("v") for line in capsys.readouterr().out.splitlines()]
    out = tmp_path / "impact"
    argv = ["impact", "--data", str(carpet_set), "--from", versions[0], "--to", versions[-1], "--category", "carpet"]
    assert kb(*argv, "--model", model_dir, "--json", "--out", str(out)) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["from_version"] == int(versions[0]) and report["to_version"] == int(versions[-1])
    assert report["answered"] > 0 and report["scope"] == "SynthIAD/carpet"
    assert report["flips"] == [q["id"] for q in report["questions"] if q["before"] != q["after"]]
    assert json.loads((out / "impact.json").read_text())["questions"] == report["questions"]
    assert "plotly" in (out / "impact.html").read_text()

    assert kb(*argv, "--model", model_dir) == 0  # the table this time, every answer from the cache
    table = capsys.readouterr().out
    assert "Anomaly Detection" in table and "the model answered 0 prompts" in table
    capsys.readouterr()
    assert kb("versions") == 0
    assert [line.split()[0].lstrip("v") for line in capsys.readouterr().out.splitlines()] == versions


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--from", "99", "--to", "1"), "version 99 does not exist"),
        (("--from", "1", "--to", "1", "--category", "wood"), "unknown category 'wood'"),
        (("--from", "1", "--to", "1", "--model", "/no/such/model"), "/no/such/model"),
    ],
)
def test_cli_errors_are_one_line_and_write_nothing(kb, carpet_set, tmp_path, capsys, extra, message):
    import lancedb

    assert kb("list", "--category", "carpet") == 0
    tables = set(lancedb.connect(tmp_path / "kb").list_tables().tables)
    capsys.readouterr()
    assert kb("impact", "--data", str(carpet_set), *extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert set(lancedb.connect(tmp_path / "kb").list_tables().tables) == tables


def test_cli_refuses_a_missing_knowledge_base(tmp_path, carpet_set, capsys):
    db = tmp_path / "none"
    argv = ["kb", "--db", str(db), "impact", "--data", str(carpet_set), "--from", "1", "--to", "1"]
    assert main(argv) == 2
    assert "no knowledge base at" in capsys.readouterr().err
    assert not db.exists()
