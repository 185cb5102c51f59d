import json

import pytest

from knowledge_helpers import SEED, make_store
from reason_iad.errors import UserError
from reason_iad.knowledge.transfer import (
    KNOWLEDGE_FORMATS,
    export_knowledge,
    import_entries,
    read_import_file,
)


def _import(store, path, partial=False):
    entries, refused = read_import_file(path, author="ana")
    return import_entries(store, entries, refused, author="ana", partial=partial)


@pytest.mark.parametrize("name", sorted(KNOWLEDGE_FORMATS))
def test_every_format_round_trips_export_import_export(tmp_path, name):
    suffix = KNOWLEDGE_FORMATS[name].suffix
    source = make_store(tmp_path / "a")
    first = tmp_path / f"first{suffix}"
    assert export_knowledge(source, first) == len(SEED)  # the format chosen by the suffix
    target = make_store(tmp_path / "b", seed=[])
    summary = _import(target, first)
    assert len(summary.created) == len(SEED) and not summary.refused and summary.version
    second = tmp_path / "second.txt"
    export_knowledge(target, second, name)  # the format chosen by name
    if suffix == ".json":
        assert first.read_text() == second.read_text()
    assert {(s.entry.id, s.entry.title, s.entry.text) for s in target.list()} == {
        (s.entry.id, s.entry.title, s.entry.text) for s in source.list()
    }


def test_import_summary_counts_created_changed_unchanged(tmp_path):
    store = make_store(tmp_path / "kb")
    data = {
        "Test": {
            "wood": {
                "scratch": "<Scratch>\nDescription: A changed text.",
                "stain": "<Stain>\nDescription: A red blotch, a liquid stain of red colour.",
                "knot": "A dark round knot.",
            }
        }
    }
    path = tmp_path / "dk.json"
    path.write_text(json.dumps(data))
    summary = _import(store, path)
    assert (summary.created, summary.changed, summary.unchanged) == (
        ["test/wood/knot"],
        ["test/wood/scratch"],
        ["test/wood/stain"],
    )
    assert store.get("test/wood/knot").entry.title == "Knot"  # no <Title>: the key names it
    assert store.changes()[-1].action == "import"


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.json", "{not json", "not valid JSON"),
        ("list.json", "[1, 2]", "domain_knowledge structure"),
        ("shape.json", '{"D": ["a"]}', "domain_knowledge structure"),
    ],
)
def test_malformed_files_are_refused_whole(tmp_path, name, content, message):
    store = make_store(tmp_path / "kb")
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        _import(store, path)
    assert store.count() == len(SEED)


def test_bad_entries_are_listed_and_nothing_written_unless_partial(tmp_path):
    store = make_store(tmp_path / "kb")
    good = {
        "id": "test/tile/chip",
        "dataset": "Test",
        "category": "tile",
        "defect": "chip",
        "title": "Chip",
        "text": "A missing corner.",
    }
    lines = [
        good,
        good | {"id": "test/tile/blank", "defect": "blank", "text": "  "},
        {k: v for k, v in good.items() if k != "dataset"} | {"id": "test/tile/nodata"},
        good | {"id": "test/tile/ctrl", "defect": "ctrl", "text": "bell \x07"},
        good | {"id": "test/tile/long", "defect": "long", "text": "x" * 9000},
        good,  # duplicate id
        good | {"id": "test/tile/dent", "defect": "dent", "title": "Dent"},
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    version, count = store.version, store.count()
    summary = _import(store, path)
    assert summary.version is None and (store.version, store.count()) == (version, count)
    reasons = " ".join(why for _, why in summary.refused)
    for expected in ("text", "dataset", "control characters", "8000", "duplicate id", "not JSON"):
        assert expected in reasons
    partial = _import(store, path, partial=True)
    assert partial.version and store.count() == count + 1  # the valid dent; the duplicated chip stays refused
    assert store.get("test/tile/dent").entry.title == "Dent"


def test_a_file_of_no_known_format_is_refused_naming_the_formats(tmp_path):
    (tmp_path / "notes.txt").write_text("{}")
    with pytest.raises(UserError, match=r"not a knowledge file; use \.json \(MMAD.*\.jsonl"):
        read_import_file(tmp_path / "notes.txt", author="ana")
