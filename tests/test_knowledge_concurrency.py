"""Concurrent writers lose nothing: threads in one process, and two processes on one database."""

import subprocess
import sys
import textwrap
import threading

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
    processes = [subprocess.Popen([sys.executable, "-c", WRITER.format(tests=tests, path=str(path), count=8, name=n)],
                                  stderr=subprocess.PIPE, text=True) for n in (1, 2)]  # fmt: skip
    outputs = [p.communicate(timeout=240)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    store = make_store(path)
    assert store.count() == len(SEED) + 16
    assert {s.entry.defect for s in store.list(category="tile")} >= {f"p{n}-{i}" for n in (1, 2) for i in range(8)}
    assert store.get("test/wood/scratch").entry.text.startswith("edited by p")
    authors = [c.author for c in store.changes() if c.action in ("add", "update")]
    assert authors.count("p1") == authors.count("p2") == 16
