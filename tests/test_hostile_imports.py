"""Malformed knowledge imports and SQL-ish search text, through `reason-iad kb` and the studio's Knowledge panels.

Every refused import is one clear line (the CLI exits with 2) and writes nothing: the store's version is
unchanged. Injection strings and very long texts in every search box and filter give no error and no rows from
outside the chosen scope.
"""

import json
import re
import shutil

import gradio as gr
import pytest

from demo.studio import build_studio
from knowledge_helpers import make_store
from reason_iad.cli import main
from reason_iad.config import AppConfig, KnowledgeConfig
from reason_iad.knowledge import open_store
from reason_iad.memory.exemplars import ExemplarStore
from reason_iad.pipeline import Pipeline

INJECTIONS = ["' OR 1=1 --", '"; DROP TABLE knowledge; --', "category = 'x' OR true", "wood' OR '1'='1"]
LONG = "scratch " * 625  # 5,000 characters
NOT_MMAD = "not MMAD's domain_knowledge structure"


def _mmad(text) -> bytes:
    return json.dumps({"Mine": {"gear": {"good": "Even teeth.", "chip": text}}}).encode()


def _jsonl(*rows) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode()


def _row(defect="chip", **fields) -> dict:
    return {
        "id": f"mine/gear/{defect}",
        "dataset": "Mine",
        "category": "gear",
        "defect": defect,
        "title": defect.capitalize(),
        "text": f"A {defect} on a tooth.",
    } | fields


DEEP = "[" * 5000 + "]" * 5000

# (name, file name, content, expected message): refusals of the whole file and of single entries alike
MALFORMED = [
    ("truncated-json", "dk.json", b'{"Mine": {"gear": {"good": "Even te', "not valid JSON"),
    ("empty-file", "dk.json", b"", "not valid JSON"),
    ("top-level-list", "dk.json", b'[{"text": "a"}]', NOT_MMAD),
    ("top-level-string", "dk.json", b'"knowledge"', NOT_MMAD),
    ("top-level-null", "dk.json", b"null", NOT_MMAD),
    ("dataset-is-a-list", "dk.json", b'{"Mine": ["gear", "chip"]}', NOT_MMAD),
    ("category-is-a-string", "dk.json", b'{"Mine": {"gear": "teeth"}}', "expected an object of key -> text"),
    ("text-is-null", "dk.json", _mmad(None), "the text must be a string"),
    ("text-is-a-number", "dk.json", _mmad(42), "the text must be a string"),
    ("text-is-an-object", "dk.json", _mmad({"nested": "text"}), "the text must be a string"),
    ("blank-text", "dk.json", _mmad("   \n\t "), "must not be empty|at least 1 character"),
    ("200k-character-text", "dk.json", _mmad("x" * 200_000), "at most 8000 characters"),
    ("control-characters", "dk.json", _mmad("ring \x1b[31mred\x07"), "control characters"),
    ("nul-character", "dk.json", _mmad("before\x00after"), "control characters"),
    ("raw-control-byte", "dk.json", b'{"Mine": {"gear": {"chip": "a\x01b"}}}', "not valid JSON"),
    ("invalid-utf8", "dk.json", b'{"Mine": {"gear": {"chip": "caf\xe9"}}}', "not UTF-8"),
    ("binary-file", "dk.json", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xd8\xff" * 50, "not UTF-8"),
    ("nested-5000-deep", "dk.json", DEEP.encode(), "nested too deeply"),
    ("nested-5000-deep-in-entry", "dk.json", _mmad("").replace(b'""', DEEP.encode()), "nested too deeply"),
    (
        "one-bad-among-good",
        "dk.json",
        json.dumps({"Mine": {"gear": {"good": "Even teeth.", "chip": "A chip.", "dent": " "}}}).encode(),
        "dent",
    ),
    (
        "duplicate-ids-by-case",
        "dk.json",
        b'{"Mine": {"gear": {"Chip": "A chip.", "chip": "Another."}}}',
        "duplicate id",
    ),
    ("jsonl-duplicate-ids", "k.jsonl", _jsonl(_row(), _row(text="Other.")), "duplicate id"),
    ("jsonl-truncated-line", "k.jsonl", _jsonl(_row(), '{"id": "mine/gear/dent", "text'), "line 2: not JSON"),
    ("jsonl-not-an-object", "k.jsonl", _jsonl(_row(), "[1, 2, 3]"), "line 2: not a JSON object"),
    ("jsonl-wrong-types", "k.jsonl", _jsonl(_row(id=5, title=["t"])), "id: Input should be a valid string"),
    ("jsonl-nulls", "k.jsonl", _jsonl(_row(text=None)), "text: Input should be a valid string"),
    ("jsonl-missing-fields", "k.jsonl", _jsonl({"id": "mine/gear/chip"}), "dataset: Field required"),
    ("jsonl-unknown-field", "k.jsonl", _jsonl(_row(vector=[0.1])), "Extra inputs are not permitted"),
    ("jsonl-nested-5000-deep", "k.jsonl", _jsonl(_row(), DEEP), "line 2: JSON nested too deeply"),
    ("jsonl-200k-title", "k.jsonl", _jsonl(_row(title="t" * 200_000)), "at most 200 characters"),
]


@pytest.fixture(scope="module")
def kb_template(tmp_path_factory):
    """A seeded knowledge base (fake text embedder, no image embedder) created once; tests copy it."""
    folder = tmp_path_factory.mktemp("kb-template") / "kb"
    assert main(["kb", "--db", str(folder), "--text-embedder", "fake:32", "--image-embedder", "none", "versions"]) == 0
    return folder


@pytest.fixture
def kb(kb_template, tmp_path):
    folder = tmp_path / "kb"
    shutil.copytree(kb_template, folder)

    def run(*args):
        return main(["kb", "--db", str(folder), "--text-embedder", "fake:32", "--image-embedder", "none", *args])

    run.folder, run.version = folder, lambda: _store(folder).version
    return run


def _store(folder):
    return open_store(KnowledgeConfig(db_uri=str(folder), text_embedder="fake:32", image_embedder=""))


def _write(tmp_path, name, content) -> str:
    path = tmp_path / "upload" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize("name, file_name, content, message", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_cli_refuses_a_malformed_import_in_one_line_and_writes_nothing(
    kb, tmp_path, capsys, name, file_name, content, message
):
    path = _write(tmp_path, file_name, content)
    capsys.readouterr()
    before = kb.version()
    assert kb("import", path, "--author", "ana") == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if err:  # the whole file is refused: one line
        assert len(err.strip().splitlines()) == 1 and err.startswith("reason-iad: error: ") and not out
        assert re.search(message, err)
    else:  # entries are refused: a summary line saying nothing was written, then one line per refusal
        first, *reasons = out.strip().splitlines()
        assert first.endswith("; nothing written") and reasons and all(r.startswith("refused ") for r in reasons)
        assert re.search(message, out)
    assert kb.version() == before


def test_cli_refuses_oversized_and_missing_files(kb, tmp_path, capsys):
    huge = tmp_path / "huge.json"
    with huge.open("wb") as handle:
        handle.truncate(51 * 2**20)  # sparse: the size check must come before reading
    before = kb.version()
    for path, message in ((huge, "larger than 50 MiB"), (tmp_path, "not found"), (tmp_path / "nope.json", "not found")):
        assert kb("import", str(path)) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert kb.version() == before


def test_sql_ish_ids_import_literally_and_touch_no_other_row(kb, tmp_path, capsys):
    rows = [_row(id=f"mine/gear/{text}", defect=text) for text in INJECTIONS]
    before = kb.version()
    assert kb("import", _write(tmp_path, "k.jsonl", _jsonl(*rows)), "--author", "ana") == 0
    assert capsys.readouterr().out.startswith(f"created {len(INJECTIONS)}, changed 0")
    assert kb.version() == before + 1
    total = _store(kb.folder).count()
    assert kb("list", "--dataset", "Mine") == 0
    assert f"({len(INJECTIONS)} entries)" in capsys.readouterr().out
    assert kb("delete", f"mine/gear/{INJECTIONS[0]}", "--yes") == 0  # the quote deletes one row, not all
    assert _store(kb.folder).count() == total - 1
    assert kb("show", f"mine/gear/{INJECTIONS[1]}") == 0
    assert "A " + INJECTIONS[1] + " on a tooth." in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["fts", "semantic", "hybrid"])
def test_cli_search_with_sql_ish_text_stays_in_scope(kb, capsys, mode):
    for text in [*INJECTIONS, "scratch"]:
        assert kb("search", text, "--mode", mode, "--dataset", "SynthIAD", "--category", "wood", "-k", "50") == 0
        ids = [line.split()[1] for line in capsys.readouterr().out.splitlines()]
        assert all(i.startswith("synthiad/wood/") for i in ids)
        for field in ("--category", "--dataset"):
            assert kb("search", "scratch", "--mode", mode, field, text, "-k", "50") == 0
            assert capsys.readouterr().out == ""  # no category or dataset is called that


def test_cli_list_filters_and_long_texts(kb, capsys):
    for text in [*INJECTIONS, LONG]:
        assert kb("list", "--category", text) == 0 and kb("list", "--dataset", text) == 0
        assert capsys.readouterr().out.splitlines() == ["(0 entries)", "(0 entries)"]
        assert kb("search", "scratch", "--category", text) == 0
        assert capsys.readouterr().out == ""
    assert kb("search", LONG) == 2  # a 5,000-character query is refused in one line, not run
    err = capsys.readouterr().err
    assert "longer than 1000 characters" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------- the studio
@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """The studio's Knowledge tab over a small store (no model: the panels under test never run one)."""
    folder = tmp_path_factory.mktemp("studio") / "kb"
    store = make_store(folder, image=False)
    exemplars = ExemplarStore(folder)
    pipeline = Pipeline(None, AppConfig(), store, exemplars)
    blocks = build_studio(AppConfig(), pipeline, examples=[])
    fns = {}
    for block_fn in blocks.fns.values():
        inner = getattr(block_fn.fn, "__wrapped__", block_fn.fn)
        fns.setdefault(getattr(inner, "__qualname__", ""), block_fn.fn)
    return fns, store


def _import_panel(fns):
    return fns["_transfer.<locals>.import_file"]  # demo/tabs/knowledge.py


@pytest.mark.parametrize("name, file_name, content, message", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_studio_import_panel_refuses_clearly_and_writes_nothing(studio, tmp_path, name, file_name, content, message):
    fns, store = studio
    before = store.version
    try:
        status = _import_panel(fns)(_write(tmp_path, file_name, content), False, None, None)
    except gr.Error as err:  # the whole file is refused: the message the user sees
        assert "\n" not in str(err) and re.search(message, str(err))
    else:
        assert status.splitlines()[0].rstrip().endswith("; nothing written") and re.search(message, status)
    store.refresh()
    assert store.version == before


def test_studio_search_and_filters_with_sql_ish_and_long_text(studio):
    fns, store = studio
    search, listing = fns["StudioHandlers.search"], fns["StudioHandlers.list_entries"]
    show_exemplars = fns["ExemplarHandlers.show"]
    for text in [*INJECTIONS, LONG[:1000]]:
        for mode in ("fts", "semantic", "hybrid"):
            assert all(row[1].startswith("test/wood/") for row in search(text, mode, "wood"))
            assert search("scratch", mode, text) == []
        assert listing(text, "") == [] and listing("", text) == [] and listing("Test", text) == []
        assert show_exemplars(f"{text} / {text}")[0] == []
    with pytest.raises(gr.Error, match="longer than 1000 characters"):
        search(LONG, "hybrid", "")
    for text in INJECTIONS:  # a long category filter runs and finds nothing
        assert listing("", text * 400) == []
    assert len(listing("Test", "wood")) == 4  # the filters do select when the value is real
