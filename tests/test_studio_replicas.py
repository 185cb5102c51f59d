"""Two studio replicas (separate `app.py` processes) on one knowledge base: a folder, then an s3:// prefix.

Both are driven only through the HTTP API, the way a load balancer's users would reach them: an entry added on
one is found by the next search on the other; concurrent writes from both are each accepted as a version that
shows them (checked in the store itself, read directly with LanceDB) or refused with a clear message, never lost
silently; and both still answer afterwards. Endpoints and their parameters are found through
`view_api` (and the studio's config for the edit endpoint, which the UI keeps out of the public API), so renamed
parameters or a reordered form do not break the test. The s3:// store is the local moto server of `s3_server.py`.
The store is made before the replicas start, small and with `fake:32` embedders, which the studio follows.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import lancedb
import pytest
from gradio_client import Client

from knowledge_helpers import SEED
from ports import free_port
from reason_iad.knowledge.embedders import FakeEmbedder
from reason_iad.knowledge.entry import entry_id
from reason_iad.knowledge.schema import HISTORY_TABLE, KNOWLEDGE_TABLE
from reason_iad.knowledge.store import KnowledgeStore

pytest_plugins = ["s3_server"]  # the s3_server fixture
pytestmark = pytest.mark.slow  # four studio processes, two at a time (~20-30 s a pair on a busy 2-core box)
ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 240
BURST = 5  # writes per replica in each concurrent burst
VERSION = re.compile(r"\bversion (\d+)\b")
GENERIC_FAILURE = "Something went wrong"  # the studio's message for an unexpected exception


class Refused(Exception):
    """The studio refused a call; the message is what its user would see."""


# ---------------------------------------------------------------------------------------------- the replicas
@dataclass
class Studio:
    """One `python app.py --port P --db URI` process with its own data folder and log file."""

    db: str
    env: dict[str, str]
    folder: Path
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = self.folder / "studio.log"
        self._log = self.log_path.open("w")
        env = self.env | {"REASON_IAD_DATA_DIR": str(self.folder / "data")}
        command = [sys.executable, str(ROOT / "app.py"), "--port", str(self.port), "--db", self.db]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.client: Client | None = None

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, deadline: float) -> None:
        while time.time() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"studio on {self.db} exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.url + "config", timeout=5).status_code == 200:
                    self.client = Client(self.url, verbose=False)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        pytest.fail(f"studio on {self.db} did not answer within {START_TIMEOUT} s:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
        self._log.close()

    # ------------------------------------------------------------------ the API
    def endpoints(self) -> dict[str, dict]:
        return self.client.view_api(return_format="dict", print_info=False)["named_endpoints"]

    def call(self, api_name: str, **values) -> object:
        """Call a public endpoint by name with keyword arguments matched to its parameters (see `arguments`)."""
        kwargs = arguments(self.endpoints()[api_name]["parameters"], values)
        try:
            return self.client.predict(api_name=api_name, **kwargs)
        except Exception as err:  # gradio_client raises AppError with the studio's message
            if type(err).__name__ != "AppError":
                raise
            raise Refused(str(err)) from None

    def call_hidden(self, api_name: str, by_label: dict[str, object]) -> object:
        """Call an endpoint the UI keeps out of the public API, directly over HTTP, its inputs matched by label."""
        config = httpx.get(self.url + "config", timeout=30).json()
        labels = {c["id"]: (c.get("props") or {}).get("label") or "" for c in config["components"]}
        dependency = next(d for d in config["dependencies"] if d.get("api_name") == api_name)
        data = [value_for(labels[i], by_label) for i in dependency["inputs"]]
        with httpx.Client(base_url=self.url, timeout=120) as http:
            started = http.post(f"gradio_api/call/{api_name}", json={"data": data})
            started.raise_for_status()
            event = ""
            with http.stream("GET", f"gradio_api/call/{api_name}/{started.json()['event_id']}") as stream:
                for line in stream.iter_lines():
                    if line.startswith("event: "):
                        event = line.removeprefix("event: ")
                    elif line.startswith("data: ") and event in ("complete", "error"):
                        payload = json.loads(line.removeprefix("data: "))
                        if event == "error":
                            raise Refused(str(payload))
                        return payload[0]
        raise AssertionError(f"{api_name} on {self.url} ended without a result")


def arguments(parameters: list[dict], values: dict[str, object]) -> dict[str, object]:
    """Keyword arguments: each value goes to the first free parameter whose name or label mentions its key.

    `query` also falls back to the first required parameter; every required parameter must be matched.
    """
    kwargs: dict[str, object] = {}
    for key, value in values.items():
        free = [p for p in parameters if p["parameter_name"] not in kwargs]
        named = [p for p in free if key in f"{p['parameter_name']} {p.get('label') or ''}".lower()]
        if not named and key == "query":
            named = [p for p in free if not p["parameter_has_default"]]
        if named:
            kwargs[named[0]["parameter_name"]] = value
    missing = [
        p["parameter_name"] for p in parameters if not p["parameter_has_default"] and p["parameter_name"] not in kwargs
    ]
    assert not missing, f"no value for the required parameters {missing} of {[p['parameter_name'] for p in parameters]}"
    return kwargs


def value_for(label: str, by_label: dict[str, object]) -> object:
    """The value of the first key mentioned by a component's label (longest keys first: 'entry id' before 'id')."""
    for key in sorted(by_label, key=len, reverse=True):
        if key in label.lower():
            return by_label[key]
    raise AssertionError(f"no value for the input labelled {label!r}")


def edit_endpoint(studio: Studio) -> tuple[str, bool] | None:
    """(api name, public?) of the knowledge edit endpoint: a public one if listed, else the UI's hidden one."""
    edits = ("edit", "save", "update")
    public = [n for n in studio.endpoints() if any(w in n for w in edits) and "annotation" not in n]
    if public:
        return public[0], True
    config = httpx.get(studio.url + "config", timeout=30).json()
    names = [d.get("api_name") or "" for d in config["dependencies"]]
    hidden = [n for n in names if any(w in n for w in edits) and "annotation" not in n and "exemplar" not in n]
    return (hidden[0], False) if hidden else None


def found_ids(results) -> set[str]:
    """Every string cell of a search-results table (a Dataframe payload or plain rows)."""
    rows = results.get("data", []) if isinstance(results, dict) else results
    return {cell for row in rows for cell in row if isinstance(cell, str)}


def version_of(status: str) -> int:
    match = VERSION.search(status)
    assert match, f"the status line names no version: {status!r}"
    return int(match.group(1))


def assert_clear(message: str) -> None:
    assert message.strip() and GENERIC_FAILURE not in message, f"unclear refusal: {message!r}"


# ---------------------------------------------------------------------------------------------- the store
@dataclass
class StoreReader:
    """The knowledge base read directly with LanceDB (no embedders needed), as both replicas store it."""

    uri: str
    storage_options: dict[str, str] | None

    def _table(self, name: str):
        return lancedb.connect(self.uri, storage_options=self.storage_options).open_table(name)

    def entries(self, version: int | None = None) -> list[dict]:
        table = self._table(KNOWLEDGE_TABLE)
        if version is not None:
            table.checkout(version)
        return table.to_arrow().select(["id", "title", "text"]).to_pylist()

    def changes(self) -> dict[int, tuple[str, list[str]]]:
        rows = self._table(HISTORY_TABLE).to_arrow().select(["version", "action", "ids"]).to_pylist()
        return {r["version"]: (r["action"], json.loads(r["ids"])) for r in rows}


def burst(replicas: dict[str, Studio], write) -> dict[str, list[tuple[int, object]]]:
    """`write(studio, name, i)` BURST times on every replica at once; per replica [(i, version or Refused)]."""
    results: dict[str, list[tuple[int, object]]] = {name: [] for name in replicas}
    failures: list[BaseException] = []
    barrier = threading.Barrier(len(replicas))

    def run(name: str, studio: Studio) -> None:
        barrier.wait()
        for i in range(BURST):
            try:
                results[name].append((i, version_of(write(studio, name, i))))
            except Refused as refusal:
                results[name].append((i, refusal))
            except BaseException as err:  # noqa: BLE001 - re-raised in the test's thread below
                failures.append(err)
                return

    threads = [threading.Thread(target=run, args=item) for item in replicas.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    if failures:
        raise failures[0]
    assert all(len(done) == BURST for done in results.values()), results
    return results


def create_store(uri: str, env: dict[str, str]) -> None:
    """A small knowledge base at `uri`, made before either replica starts.

    Both replicas open it with the embedders it records (`fake:32`), so neither spends ~15 s embedding the
    project's 253 seed entries with MiniLM, and they can start together without racing to create it.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        KnowledgeStore(uri, FakeEmbedder(32), FakeEmbedder(32), seed=SEED)


@pytest.fixture(scope="module", params=["folder", "s3"])
def replicas(request, tmp_path_factory):
    """(studio A, studio B, store reader, backend name): two `app.py` processes started together on one store."""
    env = dict(
        os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1", GRADIO_ANALYTICS_ENABLED="False"
    )
    root = tmp_path_factory.mktemp(f"replicas-{request.param}")
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        env |= server.env()
        uri, options = f"s3://{server.bucket}/studio-replicas", server.storage_options()
        create_store(uri, server.env())
    else:
        uri, options = str(root / "kb"), None
        create_store(uri, {})
    studios = []
    try:
        for name in ("a", "b"):
            (root / name).mkdir()
            studios.append(Studio(uri, env, root / name))
        deadline = time.time() + START_TIMEOUT
        for studio in studios:
            studio.wait_ready(deadline)
        yield studios[0], studios[1], StoreReader(uri, options), request.param
    finally:
        for studio in studios:
            studio.stop()


# ---------------------------------------------------------------------------------------------- the tests
def test_an_entry_added_on_one_replica_is_found_by_the_next_search_on_the_other(replicas):
    a, b, store, backend = replicas
    word, added = f"quokka{backend}", entry_id("Replica", "gear", "dent")
    assert sorted(row["id"] for row in store.entries()) == sorted(e.id for e in SEED)  # opened as it was made
    assert added not in found_ids(b.call("/search_knowledge", query=word, mode="fts"))  # B is up and has read it
    text = f"A {word}-shaped dent in the rim."
    status = a.call("/add_knowledge", dataset="Replica", category="gear", defect="dent", title="Dent", text=text)
    assert added in status, status
    assert added in found_ids(b.call("/search_knowledge", query=word, mode="fts"))  # B's next search finds it
    assert {"id": added, "title": "Dent", "text": text} in store.entries(version_of(status))


def test_concurrent_adds_of_distinct_entries_are_each_a_version_or_a_clear_refusal(replicas):
    a, b, store, _ = replicas

    def add(studio: Studio, name: str, i: int) -> str:
        return studio.call(
            "/add_knowledge",
            dataset="Replica",
            category="gear",
            defect=f"{name}{i}",
            title=f"Defect {name}{i}",
            text=f"Written by replica {name}, burst item {i}.",
        )

    results = burst({"a": a, "b": b}, add)
    accepted = {
        entry_id("Replica", "gear", f"{n}{i}"): v for n, done in results.items() for i, v in done if isinstance(v, int)
    }
    for refusal in (v for done in results.values() for _, v in done if isinstance(v, Refused)):
        assert_clear(str(refusal))
    assert len(set(accepted.values())) == len(accepted), f"two adds reported one version: {accepted}"
    latest = {row["id"]: row for row in store.entries()}
    changes = store.changes()
    for entry, version in accepted.items():
        assert entry in latest, f"{entry} was accepted as version {version} but is not in the store"
        assert changes.get(version) == ("add", [entry]), (entry, version, changes.get(version))
        assert entry in {row["id"] for row in store.entries(version)}
    for studio in (a, b):  # each replica's next search sees every accepted entry, its own and the other's
        hits = found_ids(studio.call("/search_knowledge", query="burst item", mode="fts"))
        assert set(accepted) <= hits, set(accepted) - hits
    print(f"\ndistinct adds: {len(accepted)} accepted, {2 * BURST - len(accepted)} refused")


def test_concurrent_edits_of_one_entry_are_each_a_version_or_a_clear_refusal(replicas):
    a, b, store, _ = replicas
    found = edit_endpoint(a)
    if found is None:
        pytest.skip("the studio has no knowledge edit endpoint")
    api_name, public = found
    target = entry_id("Replica", "gear", "edited")
    a.call("/add_knowledge", dataset="Replica", category="gear", defect="edited", title="Edited", text="Original.")

    def edit(studio: Studio, name: str, i: int) -> str:
        text = f"Edit {i} by replica {name}."
        if public:
            return studio.call(api_name, entry=target, title="Edited", text=text)
        return studio.call_hidden(api_name, {"entry id": target, "title": "Edited", "text": text})

    results = burst({"a": a, "b": b}, edit)
    accepted = {f"Edit {i} by replica {n}.": v for n, done in results.items() for i, v in done if isinstance(v, int)}
    refused = [v for done in results.values() for _, v in done if isinstance(v, Refused)]
    for refusal in refused:
        assert_clear(str(refusal))
    assert len(set(accepted.values())) == len(accepted), f"two edits reported one version: {accepted}"
    changes = store.changes()
    for text, version in accepted.items():  # every accepted edit is a recorded version that shows it
        assert changes.get(version) == ("update", [target]), (text, version, changes.get(version))
        assert {r["id"]: r["text"] for r in store.entries(version)}[target] == text
    if accepted:
        latest = max(accepted, key=accepted.get)
        assert {r["id"]: r["text"] for r in store.entries()}[target] == latest
    print(
        f"\nsame-entry edits via {api_name} ({'public' if public else 'hidden'}): {len(accepted)} accepted, "
        f"{len(refused)} refused"
    )


def test_both_replicas_still_answer(replicas):
    a, b, _, backend = replicas
    for studio in (a, b):
        assert studio.process.poll() is None, studio.log()[-3000:]
        assert {"/search_knowledge", "/add_knowledge"} <= set(studio.endpoints())
        assert entry_id("Replica", "gear", "dent") in found_ids(
            studio.call("/search_knowledge", query=f"quokka{backend}", mode="fts")
        )
        assert "Traceback" not in studio.log(), studio.log()[-3000:]


def test_concurrent_adds_of_one_id_keep_one_entry_and_refuse_the_rest_clearly(replicas):
    # Last in the module: it writes a conflicting pair on purpose; the checks above do not depend on it.
    a, b, store, _ = replicas
    same = entry_id("Replica", "gear", "same")

    def add(studio: Studio, name: str, i: int) -> str:
        return studio.call(
            "/add_knowledge",
            dataset="Replica",
            category="gear",
            defect="same",
            title="Same",
            text=f"Replica {name} wrote this, attempt {i}.",
        )

    results = burst({"a": a, "b": b}, add)
    accepted = [v for done in results.values() for _, v in done if isinstance(v, int)]
    for refusal in (v for done in results.values() for _, v in done if isinstance(v, Refused)):
        assert_clear(str(refusal))
    stored = [row for row in store.entries() if row["id"] == same]
    assert len(accepted) == 1 and len(stored) == 1, (
        f"{len(accepted)} adds of {same} accepted (versions {sorted(accepted)}), {len(stored)} rows stored: {stored}"
    )
