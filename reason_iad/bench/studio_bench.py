"""`reason-iad bench studio`: the studio under load, through its HTTP API only.

At once: `clients` users inspect an image, `edit_workers` curators add `edits` knowledge entries between them, and
one curator changes a category's normal exemplars `rebuilds` times (add, remove, add, ...), so the visual memory
rebuilds that bank while it is being read. Then a burst of more inspections than the queue holds shows how the
studio refuses work when it is full. `studio_checks` verifies afterwards, in the library, that nothing was lost.
"""

from __future__ import annotations

import math
import re
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from reason_iad.bench.studio_api import Endpoint, HiddenCaller, find_endpoint, hidden_endpoints, public_endpoints
from reason_iad.errors import UserError

ACCEPTED = {"IN_QUEUE", "SENDING_DATA", "PROCESSING", "ITERATING", "PROGRESS", "FINISHED"}
ADDED_ENTRY = re.compile(r"Added (\S+) as version (\d+)")
ADDED_EXEMPLAR = re.compile(r"Added exemplar (\S+?)\.(?:\s|$)")


@dataclass(frozen=True)
class LoadPlan:
    """What the load run does (the defaults are the issue's figures)."""

    image: Path  # the image every client inspects
    exemplar: Path  # a normal image of `choice` to add (and remove) as an exemplar
    choice: str  # "dataset / category" as the studio's Category dropdown offers it
    clients: int = 8
    edits: int = 100
    edit_workers: int = 4
    rebuilds: int = 2
    mode: str = "full"
    queue_size: int = 16  # the studio's queue bound (sizes the overflow burst)
    overflow: int = 6  # inspections submitted beyond what the queue can hold
    edit_dataset: str = "Load"
    edit_category: str = "gear"
    timeout_s: float = 600.0
    run_tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])  # keeps edit ids new on a reused store


@dataclass(frozen=True)
class Edit:
    """A knowledge entry added through the API, with the version the studio said it wrote."""

    id: str
    version: int


@dataclass(frozen=True)
class Overflow:
    """What a burst of more jobs than the queue holds got back."""

    submitted: int
    accepted: int
    refusals: tuple[str, ...]  # the messages of the refused jobs
    refusal_ms: tuple[float, ...]  # submit -> refusal, per refused job
    other_errors: tuple[str, ...]
    next_inspect_ms: float | None  # a fresh inspection once the burst is over (None: it failed)
    probe_ms: float | None = None  # one direct HTTP call while the queue is full: its refusal time (None: accepted)
    probe_reply: str = ""  # what that call got back

    def describe(self, queue_size: int) -> str:
        """One paragraph: how many were refused, how fast, with which message, and whether the studio recovered."""
        if not self.refusals:
            head = f"{self.submitted} inspections at once: all accepted, none refused (no queue bound in force?)"
        else:
            head = (
                f"{self.submitted} inspections at once into a queue of {queue_size}: {len(self.refusals)} refused "
                f"within {max(self.refusal_ms):.0f} ms ({self.refusals[0]!r}), {self.accepted} accepted"
            )
        after = "failed" if self.next_inspect_ms is None else f"{self.next_inspect_ms:.0f} ms"
        probe = "not refused" if self.probe_ms is None else f"refused in {self.probe_ms:.0f} ms"
        return (
            f"{head} (client-side, upload included); a direct HTTP call meanwhile: {probe} ({self.probe_reply[:80]}); "
            f"{len(self.other_errors)} other errors; next inspection {after}"
        )


@dataclass
class LoadResult:
    """Figures of one load run (errors are messages; nothing is raised out of the workers)."""

    plan: LoadPlan
    inspect_ms: list[float] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    exemplars: dict[str, bool] = field(default_factory=dict)  # exemplar id -> still present after the run
    errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    overflow: Overflow | None = None

    def percentile_ms(self, q: float) -> float:
        """The q-th percentile (0..100) of the inspection latencies, nearest rank; NaN without any."""
        if not self.inspect_ms:
            return float("nan")
        ranked = sorted(self.inspect_ms)
        return ranked[min(len(ranked), max(1, math.ceil(q / 100 * len(ranked)))) - 1]

    def report(self) -> str:
        """The figures, one line each."""
        p = self.plan
        lines = [
            f"studio load: {p.clients} inspecting clients, {p.edits} knowledge edits ({p.edit_workers} curators), "
            f"{p.rebuilds} exemplar-bank changes of {p.choice}, all at once: {self.elapsed_s:.1f} s",
            f"inspect latency (end to end, queue wait included): p50 {self.percentile_ms(50):.0f} ms, "
            f"p95 {self.percentile_ms(95):.0f} ms, max {max(self.inspect_ms, default=float('nan')):.0f} ms "
            f"over {len(self.inspect_ms)} inspections (mean {statistics.fmean(self.inspect_ms or [0]):.0f} ms)",
            f"edits acknowledged: {len(self.edits)} of {p.edits}; exemplar changes: {len(self.exemplars)} exemplars",
            f"errors: {len(self.errors)}" + "".join(f"\n  {e}" for e in self.errors[:10]),
        ]
        if self.overflow is not None:
            lines.append("queue overflow: " + self.overflow.describe(p.queue_size))
        return "\n".join(lines)


class StudioSession:
    """The endpoints one load run needs, discovered from a running studio."""

    def __init__(self, url: str) -> None:
        from gradio_client import Client

        self.url = url
        client = Client(url, verbose=False)
        endpoints = hidden_endpoints(client.config) | public_endpoints(client)
        self.inspect = _required(endpoints, "inspect")
        self.add_entry = _required(endpoints, "add", "knowledge")
        self.add_exemplar = find_endpoint(endpoints, "add", "exemplar")
        self.remove_exemplar = find_endpoint(endpoints, "remove", "exemplar")

    def client(self, workers: int = 4):
        """A fresh API client (one per simulated user)."""
        from gradio_client import Client

        return Client(self.url, verbose=False, max_workers=workers)

    def inspect_job(self, client, plan: LoadPlan):
        """Submit one inspection of the plan's image, filling only the image, the category and the mode."""
        from gradio_client import handle_file

        wanted = {"image": handle_file(str(plan.image)), "category": plan.choice, "mode": plan.mode}
        return client.submit(**self.inspect.keywords(wanted), api_name=self.inspect.api_name)

    def call(self, endpoint: Endpoint, client, caller: HiddenCaller, wanted: dict) -> list:
        """Call a public endpoint through the client, a hidden one over HTTP (files uploaded first)."""
        from gradio_client import handle_file

        if endpoint.public:
            files = {k: handle_file(str(v)) if isinstance(v, Path) else v for k, v in wanted.items()}
            result = client.predict(**endpoint.keywords(files), api_name=endpoint.api_name)
            return list(result) if isinstance(result, tuple | list) else [result]
        files = {k: caller.upload(v) if isinstance(v, Path) else v for k, v in wanted.items()}
        return caller.call(endpoint, endpoint.arguments(files))


def _required(endpoints: dict[str, Endpoint], *words: str) -> Endpoint:
    found = find_endpoint(endpoints, *words)
    if found is None:
        raise UserError(f"the studio has no endpoint named like {'_'.join(words)!r}; it has {sorted(endpoints)}")
    return found


def run_studio_load(url: str, plan: LoadPlan) -> LoadResult:
    """Warm up, run the concurrent phase, then the overflow burst; returns the figures (see `LoadResult`)."""
    session = StudioSession(url)
    if plan.rebuilds and (session.add_exemplar is None or session.remove_exemplar is None):
        raise UserError("the studio exposes no add/remove exemplar endpoints; run with --rebuilds 0")
    result = LoadResult(plan)
    session.inspect_job(session.client(), plan).result(timeout=plan.timeout_s)  # first-use costs stay out
    workers = [threading.Thread(target=_inspector, args=(session, plan, result)) for _ in range(plan.clients)]
    shares = [plan.edits // plan.edit_workers + (w < plan.edits % plan.edit_workers) for w in range(plan.edit_workers)]
    workers += [threading.Thread(target=_curator, args=(session, plan, result, w, n)) for w, n in enumerate(shares)]
    workers.append(threading.Thread(target=_exemplar_curator, args=(session, plan, result)))
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=plan.timeout_s)
    result.elapsed_s = time.perf_counter() - started
    if any(w.is_alive() for w in workers):
        result.errors.append(f"some clients were still waiting after {plan.timeout_s:.0f} s")
    if plan.overflow:
        result.overflow = overflow_burst(session, plan)
    return result


def _inspector(session: StudioSession, plan: LoadPlan, result: LoadResult) -> None:
    try:
        started = time.perf_counter()
        outputs = session.inspect_job(session.client(), plan).result(timeout=plan.timeout_s)
        result.inspect_ms.append((time.perf_counter() - started) * 1000)
        result.answers.append(next((o for o in outputs if isinstance(o, str) and "Answer" in o), ""))
    except Exception as err:  # noqa: BLE001 - every failure is a counted, reported error
        result.errors.append(f"inspect: {type(err).__name__}: {err}")


def _curator(session: StudioSession, plan: LoadPlan, result: LoadResult, worker: int, count: int) -> None:
    client, caller = session.client(), HiddenCaller(session.url)
    for i in range(count):
        wanted = {
            "dataset": plan.edit_dataset,
            "category": plan.edit_category,
            "defect": f"{plan.run_tag}-w{worker}-{i}",
            "title": f"Load edit {i} by curator {worker}",
            "text": f"Edit {i} by curator {worker}.",
        }
        try:
            reply = " ".join(map(str, session.call(session.add_entry, client, caller, wanted)))
            found = ADDED_ENTRY.search(reply)
            if found is None:
                raise RuntimeError(f"unexpected reply {reply!r}")
            result.edits.append(Edit(found.group(1).rstrip("."), int(found.group(2))))
        except Exception as err:  # noqa: BLE001
            result.errors.append(f"edit {worker}-{i}: {type(err).__name__}: {err}")
    caller.close()


def _exemplar_curator(session: StudioSession, plan: LoadPlan, result: LoadResult) -> None:
    """Bank changes one after another: add the plan's exemplar, remove it again, add it, ..."""
    client, caller, added = session.client(), HiddenCaller(session.url), None
    for change in range(plan.rebuilds):
        try:
            if added is None:
                reply = " ".join(
                    map(
                        str,
                        session.call(
                            session.add_exemplar, client, caller, {"image": plan.exemplar, "category": plan.choice}
                        ),
                    )
                )
                found = ADDED_EXEMPLAR.search(reply)
                if found is None:
                    raise RuntimeError(f"unexpected reply {reply!r}")
                added = found.group(1)
                result.exemplars[added] = True
            else:
                session.call(session.remove_exemplar, client, caller, {"exemplar": added, "category": plan.choice})
                result.exemplars[added], added = False, None
        except Exception as err:  # noqa: BLE001
            result.errors.append(f"exemplar change {change + 1}: {type(err).__name__}: {err}")
    caller.close()


def overflow_burst(session: StudioSession, plan: LoadPlan) -> Overflow:
    """Submit `queue_size + 1 + overflow` inspections at once; time the refusals, cancel the waiting rest."""
    from gradio_client.utils import QueueError

    burst = plan.queue_size + 1 + plan.overflow
    client = session.client(workers=burst + 2)
    submitted = [(time.perf_counter(), session.inspect_job(client, plan)) for _ in range(burst)]
    fate: dict[int, tuple[str, float]] = {}  # job -> (accepted | refused | error, ms)
    deadline = time.perf_counter() + plan.timeout_s
    while len(fate) < burst and time.perf_counter() < deadline:
        for i, (at, job) in enumerate(submitted):
            if i in fate:
                continue
            if job.done() and job.exception() is not None:
                kind = "refused" if isinstance(job.exception(), QueueError) else "error"
                fate[i] = (kind, (time.perf_counter() - at) * 1000)
            elif job.done() or job.status().code.name in ACCEPTED:
                fate[i] = ("accepted", (time.perf_counter() - at) * 1000)
        time.sleep(0.005)
    probe_ms, probe_reply = _probe(session, plan)
    for i, (_, job) in enumerate(submitted):
        if fate.get(i, ("",))[0] == "accepted" and not job.done():
            job.cancel()
    refused = [i for i, (kind, _) in fate.items() if kind == "refused"]
    errors = [
        f"{type(submitted[i][1].exception()).__name__}: {submitted[i][1].exception()}"
        for i, (kind, _) in fate.items()
        if kind == "error"
    ]
    errors += [f"job {i} neither accepted nor refused" for i in range(burst) if i not in fate]
    return Overflow(
        burst,
        sum(kind == "accepted" for kind, _ in fate.values()),
        tuple(str(submitted[i][1].exception()) for i in refused),
        tuple(fate[i][1] for i in refused),
        tuple(errors),
        _next_inspection(session, plan),
        probe_ms,
        probe_reply,
    )


def _probe(session: StudioSession, plan: LoadPlan, tries: int = 3) -> tuple[float | None, str]:
    """Time the server's refusal of direct HTTP calls to /inspect (the image uploaded first, out of the timing).

    A call that finds a slot freed is accepted (and left to run); the next one finds the queue full again.
    """
    caller = HiddenCaller(session.url)
    try:
        wanted = {"image": caller.upload(plan.image), "category": plan.choice, "mode": plan.mode}
        values, reply = session.inspect.arguments(wanted), ""
        for _ in range(tries):
            started = time.perf_counter()
            response = caller.start(session.inspect, values)
            elapsed = (time.perf_counter() - started) * 1000
            reply = f"HTTP {response.status_code}: {response.text.strip()}"
            if response.status_code == 503:
                return elapsed, reply
        return None, reply
    finally:
        caller.close()


def _next_inspection(session: StudioSession, plan: LoadPlan) -> float | None:
    started = time.perf_counter()
    try:
        session.inspect_job(session.client(), plan).result(timeout=plan.timeout_s)
    except Exception:  # noqa: BLE001 - reported as a failed recovery
        return None
    return (time.perf_counter() - started) * 1000
