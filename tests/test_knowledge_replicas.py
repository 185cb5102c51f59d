"""Two replicas, one knowledge base: separate processes on one folder and on one s3:// prefix.

Each replica opens the store once and keeps it (as a studio replica does); an edit through one is seen by the
other's next read, and concurrent edits of one entry are serialised: every accepted change is a version that
shows it, and edits of different fields of one entry both survive.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from knowledge_helpers import make_store

pytest_plugins = ["s3_server"]  # the s3_server fixture
pytestmark = pytest.mark.slow  # four replica processes (LanceDB imports take seconds each on a busy machine)
REPLICA = Path(__file__).parent / "knowledge_replica.py"
ENTRY = "test/wood/scratch"


class Replica:
    """A `knowledge_replica.py` process: send a command, read its reply."""

    def __init__(self, uri: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(REPLICA), uri], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )

    def wait_ready(self) -> None:
        line = self.process.stdout.readline()
        assert "ready" in line, f"replica failed to start: {line!r}"

    def __call__(self, op: str, **command):
        self.process.stdin.write(json.dumps({"op": op, **command}) + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        if "error" in reply:
            raise AssertionError(f"{op} failed in the replica: {reply['error']}")
        return reply["ok"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module", params=["folder", "s3"])
def replicas(request, tmp_path_factory):
    """(uri, env, replica A, replica B) on a fresh knowledge base, in a folder or under an s3:// prefix."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        env |= server.env()
        uri = f"s3://{server.bucket}/replicas"
    else:
        uri = str(tmp_path_factory.mktemp("replicas") / "kb")
    previous = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # this process reads the same store to check the replicas' work
    make_store(uri)
    pair = [Replica(uri, env) for _ in range(2)]
    for replica in pair:
        replica.wait_ready()
    yield uri, pair[0], pair[1]
    for replica in pair:
        replica.close()
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def test_an_edit_through_one_replica_is_seen_by_the_next_read_on_the_other(replicas):
    uri, a, b = replicas
    before = b("get", id=ENTRY)
    version = a("update", id=ENTRY, author="a", fields={"text": "A zigzag scratch across the grain."})
    assert b("get", id=ENTRY)["text"] == "A zigzag scratch across the grain." != before["text"]
    assert b("search", query="zigzag") == [ENTRY] and b("version") == version
    added = a("add", category="tile", defect="chip", text="A quokka-shaped chip.", author="a")
    assert b("search", query="quokka") == ["test/tile/chip"] and b("version") == added
    assert [c[1:] for c in b("changes")][-2:] == [["a", "update"], ["a", "add"]]
    tagged = b("tag", name="replica-release")
    assert a("tags") == {"replica-release": tagged}
    a("delete", id="test/tile/chip", author="a")
    assert b("search", query="quokka") == []
    b("update", id=ENTRY, author="b", fields={"title": "Zigzag scratch"})
    assert a("get", id=ENTRY)["title"] == "Zigzag scratch"


def _burst_both(a, b, a_burst: dict, b_burst: dict) -> tuple[list, list]:
    """Run two bursts at the same moment, one per replica; their [value, version or error] lists."""
    start = time.time() + 1.0
    for replica, burst in ((a, a_burst), (b, b_burst)):
        replica.process.stdin.write(json.dumps({"op": "burst", "id": ENTRY, "start_at": start, **burst}) + "\n")
        replica.process.stdin.flush()
    return tuple(json.loads(r.process.stdout.readline())["ok"] for r in (a, b))


def test_concurrent_edits_of_different_fields_both_survive(replicas):
    uri, a, b = replicas
    texts, titles = [f"text by a {i}" for i in range(6)], [f"title by b {i}" for i in range(6)]
    burst_a = {"field": "text", "values": texts, "author": "a"}
    done_a, done_b = _burst_both(a, b, burst_a, {"field": "title", "values": titles, "author": "b"})
    assert all(isinstance(v, int) for _, v in done_a + done_b), (done_a, done_b)  # serialised, none refused
    final = make_store(uri).get(ENTRY).entry
    assert (final.text, final.title) == (texts[-1], titles[-1])  # neither replica's edits overwrote the other's


def test_concurrent_edits_of_one_field_are_serialised_and_every_accepted_one_is_a_version(replicas):
    uri, a, b = replicas
    burst_a = {"field": "text", "values": [f"a{i} text" for i in range(6)], "author": "a"}
    burst_b = {"field": "text", "values": [f"b{i} text" for i in range(6)], "author": "b"}
    done_a, done_b = _burst_both(a, b, burst_a, burst_b)
    accepted = [(value, v) for value, v in done_a + done_b if isinstance(v, int)]
    refused = [v for _, v in done_a + done_b if not isinstance(v, int)]
    assert all("another writer" in message for message in refused)  # a refusal says why, nothing silent
    assert len({v for _, v in accepted}) == len(accepted) >= 6  # one version per accepted change
    store = make_store(uri)
    for value, version in accepted:  # every accepted change is visible at its version
        assert {s.entry.id: s.entry.text for s in store.list(version=version)}[ENTRY] == value
    latest = max(accepted, key=lambda pair: pair[1])
    assert store.get(ENTRY).entry.text == latest[0]
    recorded = {c.version: c.author for c in store.changes() if c.action == "update"}
    assert all(recorded.get(version) == value[0] for value, version in accepted)  # history names each writer
    print(
        f"\nsame-field burst: {len(accepted)} accepted, {len(refused)} refused, {len(store.table.list_versions())}"
        " versions in all"
    )
