"""After a studio load run: nothing lost (every edit in the history and at its version), every bank consistent.

Also starts the studio (`app.py`) in a child process for `reason-iad bench studio`, on a knowledge base folder
the checks then open in this process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from reason_iad.bench.studio_bench import Edit, LoadResult
from reason_iad.errors import UserError

APP = Path(__file__).resolve().parents[2] / "app.py"
REFUSAL_LIMIT_MS = 10_000.0  # client-side (upload included): slower than this is a hang, not a refusal
PROBE_LIMIT_MS = 1000.0  # the server's own answer to a call that finds the queue full


def run_checks(result: LoadResult, db: str | None) -> list[str]:
    """Every problem of a load run: its errors, the queue's refusals, and (with `db`) the stored data."""
    problems = list(result.errors)
    if result.answers and not all("Answer" in a for a in result.answers):
        problems.append("an inspection came back without an answer")
    overflow = result.overflow
    if overflow is not None:
        if not overflow.refusals:
            problems.append(
                f"the queue refused none of {overflow.submitted} inspections: it has no bound "
                "(launch it with queue(max_size=...))"
            )
        elif max(overflow.refusal_ms) > REFUSAL_LIMIT_MS:
            problems.append(f"a refusal took {max(overflow.refusal_ms):.0f} ms (limit {REFUSAL_LIMIT_MS:.0f})")
        if overflow.refusals and (overflow.probe_ms is None or overflow.probe_ms > PROBE_LIMIT_MS):
            problems.append(
                f"a direct call into the full queue was not refused within {PROBE_LIMIT_MS:.0f} ms "
                f"({overflow.probe_reply[:120]})"
            )
        problems += [f"overflow: {e}" for e in overflow.other_errors]
        if overflow.next_inspect_ms is None:
            problems.append("the studio did not answer an inspection after the overflow")
    if db:
        store, memory = open_for_checks(db)
        problems += check_edits(store, result.edits) + check_banks(memory, result.exemplars)
    return problems


def check_edits(store, edits: Sequence[Edit]) -> list[str]:
    """Problems with the acknowledged edits: missing now, absent from the history, or not at their version."""
    store.refresh()
    problems = []
    present = store.get_many([e.id for e in edits])
    problems += [
        f"edit {e.id} (version {e.version}) is missing from the knowledge base" for e in edits if e.id not in present
    ]
    changes = {c.version: c for c in store.changes()}
    for edit in edits:
        change = changes.get(edit.version)
        if change is None or change.action != "add" or edit.id not in change.ids:
            problems.append(f"edit {edit.id}: the history has no 'add' of it at version {edit.version}")
        elif edit.id not in store.at_version(edit.version).get_many([edit.id]):
            problems.append(f"edit {edit.id}: version {edit.version} does not hold it")
    if len({e.version for e in edits}) != len(edits):
        problems.append("two edits were acknowledged with the same version")
    return problems


def check_banks(memory, changed: dict[str, bool] | None = None) -> list[str]:
    """Problems with the visual memory's banks, and with exemplars changed through the studio.

    Every built bank must hold exactly its category's exemplars (ids in the calibration record, patch rows of no
    other exemplar, as many rows as recorded); a bank never built yet is built on its first inspection. `changed`
    maps exemplar ids to whether they should still exist: each must then be in the exemplar table and in its
    category's bank, or in neither.
    """
    problems, pairs = [], memory.categories()
    for dataset, category in pairs:
        ids = tuple(r.id for r in memory.exemplars(dataset, category))
        info = memory.bank_info(dataset, category)
        if not info.version:
            continue
        _, bank_ids, _ = memory.store.read_bank(dataset, category)
        where = f"bank {dataset}/{category}"
        if info.exemplar_ids != ids:
            problems.append(f"{where} was built from {len(info.exemplar_ids)} exemplars, the category has {len(ids)}")
        if stray := set(bank_ids) - set(ids):
            problems.append(f"{where} holds patches of {len(stray)} exemplars that are not the category's")
        if len(bank_ids) != info.num_patches:
            problems.append(f"{where} holds {len(bank_ids)} patch rows, its record says {info.num_patches}")
    stored = {r.id for d, c in pairs for r in memory.exemplars(d, c)}
    banked = {i for d, c in pairs for i in memory.bank_info(d, c).exemplar_ids}
    for exemplar_id, expected in (changed or {}).items():
        if (exemplar_id in stored) != expected or (exemplar_id in banked) != expected:
            problems.append(
                f"exemplar {exemplar_id}: expected {'present' if expected else 'removed'}, exemplar "
                f"table {exemplar_id in stored}, bank {exemplar_id in banked}"
            )
    return problems


def open_for_checks(db: str):
    """(knowledge store, visual memory) of a knowledge base folder, as the embedded studio has them."""
    from reason_iad.config import AppConfig, KnowledgeConfig, with_model_defaults
    from reason_iad.knowledge import follow_store, open_store
    from reason_iad.memory import open_memory

    config = with_model_defaults(AppConfig(knowledge=KnowledgeConfig(db_uri=db)))
    store = open_store(follow_store(config.knowledge), seed_dir=None)
    memory = open_memory(db, config.memory)
    return store, memory


class StudioProcess:
    """`python app.py` in a child process on a free port, stopped (by its own id) when the block ends.

    Without `db` it runs on a new temporary folder (knowledge base and log), removed again at the end.
    """

    def __init__(self, model: str, db: str | None, queue_size: int, startup_s: float = 600.0) -> None:
        if not APP.is_file():
            raise UserError(
                f"{APP} is not here (an installed package has no app.py): start the studio yourself "
                "and pass --url and --db"
            )
        self.folder = None if db else Path(tempfile.mkdtemp(prefix="reason-iad-bench-studio-"))
        self.db = db or str(self.folder / "kb")
        self.model, self.queue_size, self.startup_s = model, queue_size, startup_s
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process: subprocess.Popen | None = None
        self.log = (self.folder or Path(tempfile.gettempdir())) / f"reason-iad-bench-studio-{self.port}.log"

    def __enter__(self) -> StudioProcess:
        env = os.environ | {"GRADIO_ANALYTICS_ENABLED": "False", "REASON_IAD_MAX_QUEUE": str(self.queue_size)}
        command = [sys.executable, str(APP), "--port", str(self.port), "--db", self.db, "--model", self.model]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)  # noqa: S603
        try:
            self._wait_until_serving()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_until_serving(self) -> None:
        import httpx

        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise UserError(f"the studio exited with code {self.process.returncode}: {self._log_tail()}")
            try:
                if httpx.get(self.url + "config", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise UserError(f"the studio did not answer within {self.startup_s:.0f} s: {self._log_tail()}")

    def _log_tail(self, lines: int = 5) -> str:
        tail = self.log.read_text(errors="replace").strip().splitlines()[-lines:] if self.log.is_file() else []
        return " | ".join(tail) or "(no output)"

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
