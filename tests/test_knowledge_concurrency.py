"""Concurrent writers lose nothing: threads in one process, and two processes on one database."""

import subprocess
import sys
import textwrap
import threading

import pytest

from knowledge_helpers import SEED, entry, make_store

WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from knowledge_helpers import entry, make_store
    store = make_store({path!r})
    for i in range({count}):
        store.add([entry("tile", "p{name}-" + str(i))], author="p{name}")
        store.update("test/wood/scratch", author="p{name}", text="edited by p{name} " + str(i))
    """
)


def test_threads_do_not_lose_updates(tmp_path):
    store = make_store(tmp_path / "kb")
    errors = []

    def work(name):
        try:
            for i in range(5):
                store.add([entry("tile", f"t{name}-{i}")], author=f"t{name}")
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count() == len(SEED) + 30
    assert len([c for c in store.changes() if c.action == "add"]) == 30
    assert len({c.version for c in store.changes()}) == len(store.changes())  # one version per change


def test_two_processes_do_not_lose_updates(tmp_path):
    path = tmp_path / "kb"
    make_store(path)
    tests = str(__import__("pathlib").Path(__file__).parent)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER.format(tests=tests, path=str(path), count=8, name=n)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (1, 2)
    ]
    outputs = [p.communicate(timeout=240)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    store = make_store(path)
    assert store.count() == len(SEED) + 16
    assert {s.entry.defect for s in store.list(category="tile")} >= {f"p{n}-{i}" for n in (1, 2) for i in range(8)}
    assert store.get("test/wood/scratch").entry.text.startswith("edited by p")
    authors = [c.author for c in store.changes() if c.action in ("add", "update")]
    assert authors.count("p1") == authors.count("p2") == 16


def _two_replicas(tmp_path):
    """Two stores on one folder that do not share the in-process write lock (as two processes would not)."""
    (tmp_path / "alias").symlink_to(tmp_path / "kb")
    return make_store(tmp_path / "kb"), make_store(tmp_path / "alias")


def _race_before_commit(monkeypatch, store, other_write, times=1):
    """Make `other_write()` happen after `store` has read an entry and before it commits (the first `times`)."""
    rows, calls = store.rows, []

    def rows_while_another_replica_writes(entries, created_at):
        if len(calls) < times:
            other_write(len(calls))
        calls.append(1)
        return rows(entries, created_at)

    monkeypatch.setattr(store, "rows", rows_while_another_replica_writes)
    return calls


def test_an_edit_raced_by_another_replica_is_reapplied_on_the_new_entry(tmp_path, monkeypatch):
    a, b = _two_replicas(tmp_path)
    calls = _race_before_commit(monkeypatch, a, lambda _: b.update("test/wood/scratch", "b", text="Edited by b."))
    a.update("test/wood/scratch", author="a", title="Titled by a")
    final = make_store(tmp_path / "kb").get("test/wood/scratch").entry
    assert (final.text, final.title) == ("Edited by b.", "Titled by a")  # b's edit was not overwritten
    assert len(calls) == 2  # the stale attempt was detected and done again on the new entry
    assert [(c.author, c.action) for c in a.changes()][-2:] == [("b", "update"), ("a", "update")]


def test_an_edit_raced_every_time_is_refused_clearly_and_not_recorded(tmp_path, monkeypatch):
    from reason_iad.errors import UserError
    from reason_iad.lance_tables import COMMIT_ATTEMPTS

    a, b = _two_replicas(tmp_path)
    _race_before_commit(monkeypatch, a, lambda n: b.update("test/wood/scratch", "b", text=f"b {n}."), times=99)
    with pytest.raises(UserError, match="changed by another writer"):
        a.update("test/wood/scratch", author="a", title="Never stored")
    assert a.get("test/wood/scratch").entry.title != "Never stored"
    assert [c.author for c in a.changes() if c.action == "update"] == ["b"] * COMMIT_ATTEMPTS


def test_an_edit_of_an_entry_deleted_meanwhile_is_refused_and_does_not_bring_it_back(tmp_path, monkeypatch):
    from reason_iad.errors import UserError

    a, b = _two_replicas(tmp_path)
    _race_before_commit(monkeypatch, a, lambda _: b.delete(["test/wood/scratch"], "b"), times=1)
    with pytest.raises(UserError, match="deleted meanwhile"):
        a.update("test/wood/scratch", author="a", title="Resurrected")
    assert "test/wood/scratch" not in {s.entry.id for s in make_store(tmp_path / "kb").list()}


def test_an_add_racing_another_replicas_add_of_the_same_id_is_undone_and_refused(tmp_path, monkeypatch):
    """Two replicas both pass the "id is free" check; the second to commit undoes its rows and says so."""
    import lancedb

    from knowledge_helpers import make_store
    from reason_iad.errors import UserError
    from reason_iad.knowledge.entry import make_entry

    first, second = make_store(tmp_path / "kb"), make_store(tmp_path / "kb")
    entry = make_entry(id="x/y/same", dataset="x", category="y", defect="same", title="Same", text="First.")
    monkeypatch.setattr(second, "get_many", lambda ids: {})  # its check ran before the first replica's commit
    first.add([entry], author="ana")
    before = len(first.changes())
    with pytest.raises(UserError, match="added by another writer meanwhile"):
        second.add([entry.model_copy(update={"text": "Second."})], author="bo")
    rows = lancedb.connect(str(tmp_path / "kb")).open_table("knowledge").search().where("id = 'x/y/same'").to_list()
    assert [r["text"] for r in rows] == ["First."]
    assert len(first.changes()) == before  # the undone add left no change in the history
