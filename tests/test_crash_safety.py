"""A writer killed (SIGKILL) mid-write leaves the last committed version complete, readable and writable.

Writers (`crash_writer.py`) say where they are; each test kills one at a named point (or a moment after one) on
a folder, or at a chosen request of an S3 server (the knowledge table's commit refused, or the request right
after it). Then: the row count is that of a committed version, every row parses, nothing of the killed write is
half visible, the next start opens the store (finishing an interrupted creation), and the next write succeeds.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lancedb
import pytest
from crash_writer import IMPORT_SIZE, annotation_image, memory_texture, open_memory

from knowledge_helpers import SEED, entry, make_store
from reason_iad.annotations import AnnotationStore
from reason_iad.exports import export_mmad
from reason_iad.knowledge.rows import stored_entry
from reason_iad.knowledge.schema import HISTORY_TABLE, KNOWLEDGE_TABLE
from reason_iad.knowledge.search import search
from reason_iad.lance_tables import has_table
from reason_iad.mmad import load_mmad

pytest_plugins = ["s3_server"]  # the s3_server and s3_uri fixtures
pytestmark = pytest.mark.slow  # one writer process per kill point
WRITER = Path(__file__).parent / "crash_writer.py"


def kill_writer(
    kind: str, uri: str, pause_at: str = "-", delay: float | None = None, extra: str = "", on_start=None
) -> list[str]:
    """Run a writer and SIGKILL it at `pause_at` (or `delay` seconds after reaching it); the points it passed.

    `on_start(pid)` runs before the writer is told to go (e.g. to arm a kill at a server request); the writer is
    then killed by that hook, or at the pause point.
    """
    args = [sys.executable, str(WRITER), kind, uri, "-" if delay is not None else pause_at, extra]
    process = subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ, OMP_NUM_THREADS="1")
    )
    assert process.stdout.readline().strip() == "ready"
    if on_start is not None:
        on_start(process.pid)
    process.stdin.write("go\n")
    process.stdin.flush()
    passed = []
    for line in process.stdout:
        passed.append(line.strip())
        if line.strip() == f"at {pause_at}":
            time.sleep(delay or 0.0)
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL and "done" not in passed, passed
    return passed


def committed_rows(table) -> dict[int, int]:
    """Row count of every committed version of a table."""
    return {v["version"]: int(v["metadata"]["total_rows"]) for v in table.list_versions()}


def assert_knowledge_intact(uri: str, allowed_counts: set[int]) -> int:
    """The latest version is committed, complete and parses; the store opens and writes. Its row count."""
    db = lancedb.connect(uri)
    table = db.open_table(KNOWLEDGE_TABLE)
    count = table.count_rows()
    assert count == committed_rows(table)[table.version] and count in allowed_counts
    rows = table.search().limit(count + 1).to_list()
    assert len(rows) == count and len({stored_entry(r).entry.id for r in rows}) == count  # every row parses
    assert all(len(r["text_vector"]) == 32 for r in rows)
    store = make_store(uri, seed=SEED)  # what the next start of the studio does
    assert store.count() == count
    versions = set(committed_rows(store.table))
    assert {c.version for c in store.changes()} <= versions  # history never names a version that is not there
    version = store.add([entry("after", "crash", "Written after the crash.")], author="next")
    assert version == store.version
    assert search(store, "written after the crash", "fts")[0].entry.id == "test/after/crash"
    return count


def kill_at_request(s3_server, wanted):
    """An `on_start` hook: SIGKILL the writer when the S3 server receives a request `wanted(request)` accepts, and
    refuse that request (it never lands)."""

    def arm(pid):
        def hook(request):
            if wanted(request):
                os.kill(pid, signal.SIGKILL)
                return True
            return False

        s3_server.on_request = hook

    return arm


def knowledge_put(request, manifest: bool) -> bool:
    """A PUT of the knowledge table's manifest (its commit), or of one of its data files."""
    if request.method != "PUT" or f"/{KNOWLEDGE_TABLE}.lance/" not in request.path:
        return False
    return request.path.endswith(".manifest") if manifest else "/data/" in request.path


@pytest.mark.parametrize("where", ["folder: seed committed", "s3: seed data up, commit refused"])
def test_first_start_killed_while_creating_and_seeding_the_knowledge_base(tmp_path, s3_server, s3_uri, where):
    if where.startswith("s3"):  # leaves a table prefix with data files and no manifest: listed, but not openable
        uri, pause, on_start = s3_uri, "never", kill_at_request(s3_server, lambda r: knowledge_put(r, manifest=True))
    else:  # killed right after the seeded table's commit, before its history row and search indexes
        uri, pause, on_start = str(tmp_path / "kb"), "created", None
    kill_writer("kb-create", uri, pause, on_start=on_start)
    s3_server.on_request = None
    db = lancedb.connect(uri)
    committed = has_table(db, KNOWLEDGE_TABLE)  # what the studio's start-up (`open_store`) asks
    assert committed == where.startswith("folder")
    assert KNOWLEDGE_TABLE in db.list_tables().tables  # on S3: a half-created table that only looks present
    store = make_store(uri, seed=() if committed else SEED)  # uncommitted: created and seeded as if new
    count = store.count()
    assert count == (IMPORT_SIZE if committed else len(SEED))
    assert [c.action for c in store.changes()] == ["seed"]  # seeded exactly once, and recorded
    assert {i.columns[0] for i in store.table.list_indices()} >= {"body", "dataset", "category"}
    assert_knowledge_intact(uri, {count})
    print(f"\nkb-create killed ({where}): committed={committed}, {count} entries after the restart")


@pytest.mark.parametrize(
    "where",
    [
        "folder: 0.02 s into the write",
        "folder: before the history row",
        "s3: commit refused",
        "s3: right after the commit",
    ],
)
def test_large_import_killed_mid_write_leaves_a_committed_version(tmp_path, s3_server, s3_uri, where):
    committed = []

    def after_commit(request):
        committed.extend([request.path] if knowledge_put(request, manifest=True) else [])
        return bool(committed) and not knowledge_put(request, manifest=True) and HISTORY_TABLE in request.path

    uri = s3_uri if where.startswith("s3") else str(tmp_path / "kb")
    make_store(uri)
    if where == "folder: 0.02 s into the write":
        kill_writer("kb-import", uri, "rows", delay=0.02)
    elif where == "folder: before the history row":
        kill_writer("kb-import", uri, "history")
    else:
        wanted = after_commit if "after" in where else lambda r: knowledge_put(r, manifest=True)
        kill_writer("kb-import", uri, "never", on_start=kill_at_request(s3_server, wanted))
    s3_server.on_request = None
    count = assert_knowledge_intact(uri, {len(SEED), len(SEED) + IMPORT_SIZE})
    if where in ("folder: before the history row", "s3: right after the commit"):
        assert count == len(SEED) + IMPORT_SIZE  # committed, unrecorded: the version still holds it all
    if where == "s3: commit refused":
        assert count == len(SEED)  # every data file was up, the manifest never landed: none of it is visible
    print(f"\nkb-import killed ({where}): {count} entries visible")


def assert_memory_intact(uri: str) -> None:
    """Patch rows match a committed version; the memory opens, inspects, and its bank matches its exemplars."""
    memory = open_memory(uri)
    table = memory.store.patches
    assert table.count_rows() == committed_rows(table)[table.version]
    evidence = memory.inspect(memory_texture(3), "Crash", "tile")
    assert 0.0 <= evidence.score <= 1.0
    info = memory.bank_info("Crash", "tile")
    assert info.exemplar_ids == tuple(r.id for r in memory.exemplars("Crash", "tile"))
    vectors, ids, _ = memory.store.read_bank("Crash", "tile")
    assert len(vectors) == info.num_patches and set(ids) == set(info.exemplar_ids)  # the bank is what it says
    after = memory.add_exemplars("Crash", "tile", [memory_texture(20)])
    assert len(after.exemplar_ids) == len(info.exemplar_ids) + 1 and after.version > info.version


def test_memory_bank_update_killed_before_its_calibration_is_rebuilt_consistently(tmp_path):
    # also run by hand at "exemplars" (before the bank) and in `memory-rebuild` at "bank": both pass the same checks
    uri = str(tmp_path / "db")
    open_memory(uri).add_exemplars("Crash", "tile", [memory_texture(0), memory_texture(1)])
    kill_writer("memory-add", uri, "bank")  # exemplars and appended patches committed, the calibration not
    assert_memory_intact(uri)


def _assert_complete_export(folder: Path, count: int) -> None:
    records = load_mmad(folder / "mmad.json")
    assert len(records) == count and all((folder / key).is_file() for key in records)


@pytest.mark.parametrize("point", ["renamed", "removed"])  # between the two renames; after removing the old one
def test_annotation_export_killed_midway_never_loses_the_previous_export(tmp_path, point):
    uri, out = str(tmp_path / "db"), tmp_path / "export"
    store = AnnotationStore(uri)
    for i in range(3):
        store.add(annotation_image(i), "normal", "Crash", "gear", author="ana")
    export_mmad(store.list(), out)
    for i in range(3, 40):
        store.add(annotation_image(i), "normal", "Crash", "gear", author="ana")
    kill_writer("annotation-export", uri, point, extra=str(out))
    previous = [p for p in tmp_path.iterdir() if p.name.startswith(".export-") and p.name.endswith("-previous")]
    if point == "renamed":  # the previous export waits beside, whole, until the new one is in place
        assert not out.exists() and len(previous) == 1
        _assert_complete_export(previous[0], 3)
    else:  # the new export is in place before the old one is removed
        _assert_complete_export(out, 40)
    assert export_mmad(store.list(), out, force=True) == 40
    _assert_complete_export(out, 40)


def test_annotations_added_by_a_killed_writer_are_whole_or_absent(tmp_path):
    uri = str(tmp_path / "db")
    AnnotationStore(uri)
    passed = kill_writer("annotation-add", uri, "added", delay=0.3)
    table = lancedb.connect(uri).open_table("annotations")
    assert table.count_rows() == committed_rows(table)[table.version] >= passed.count("at added")
    listed = AnnotationStore(uri).list()  # every row decodes (images and all)
    assert len(listed) == table.count_rows() and all(a.image.size == (96, 72) for a in listed)
    AnnotationStore(uri).add(annotation_image(99), "normal", "Crash", "gear", author="next")
    assert len(AnnotationStore(uri).list()) == len(listed) + 1
