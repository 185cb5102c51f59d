"""Scale an evaluation out with Ray: one model replica per worker, images sharded over the workers.

`RayAnswerer` starts a local Ray cluster (or joins one at `ClusterConfig.address`), creates the worker actors,
waits until every replica has loaded its model, then hands out one image (all its questions) at a time, keeping
each worker busy, and yields the answers as they come back. The driver alone writes the answers file, so the
output, resume and reports are those of a single-process run; every question is a fresh inspection seeded by
the config, so the answers are identical too (on the same hardware, with the same CPU thread count).
On a joined cluster every node needs this package installed and the data at the same path.
Ray is optional: it is imported only here, with an install hint when it is missing.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from reason_iad.errors import UserError
from reason_iad.eval.answering import answer_items, shard_by_image
from reason_iad.eval.answers import AnswerRecord
from reason_iad.eval.reader import EvalItem
from reason_iad.eval.run_config import EvalRunConfig

RAY_HINT = "pip install 'ray==2.60.0' (listed in requirements-dev.txt)"
DEFAULT_CPU_WORKERS = 2
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024  # answers and questions are small
START_TIMEOUT_S = 1800.0  # loading a 7B replica can take minutes


@dataclass(frozen=True)
class ClusterConfig:
    """Where and how wide to run."""

    address: str | None = None  # None: start a local cluster; "auto", "HOST:PORT" or "ray://HOST:PORT" joins one
    workers: int | None = None  # None: as many as the GPUs allow (by gpus_per_worker), else 2 on CPUs
    gpus_per_worker: float | None = None  # None: 1 when the cluster has GPUs, else 0; fractions share a GPU
    threads_per_worker: int = 1  # torch CPU threads (and Ray CPUs) per worker
    tasks_in_flight: int = 2  # images queued per worker, so none waits for the driver

    def __post_init__(self) -> None:
        if self.workers is not None and not 1 <= self.workers <= 4096:
            raise UserError(f"workers must be between 1 and 4096, not {self.workers}")
        if self.gpus_per_worker is not None and not 0 <= self.gpus_per_worker <= 64:
            raise UserError(f"gpus per worker must be between 0 and 64, not {self.gpus_per_worker}")
        if not 1 <= self.threads_per_worker <= 256 or not 1 <= self.tasks_in_flight <= 64:
            raise UserError("threads per worker must be 1..256 and tasks in flight 1..64")


def require_ray():
    """Import Ray, or explain how to install it."""
    try:
        import ray
    except ImportError as err:
        raise UserError(f"--ray needs Ray, which is not installed: {RAY_HINT}") from err
    return ray


@dataclass(frozen=True)
class ShardResult:
    """What a worker returns for one image: its answers, or the one-line error that stopped it."""

    records: tuple[AnswerRecord, ...] = ()
    error: str | None = None


class EvalWorker:
    """One model replica (wrapped by `ray.remote` at start; plain class so it stays importable without Ray)."""

    def __init__(self, config: EvalRunConfig, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.error: str | None = None
        self.run = None
        try:
            from reason_iad.eval.aids import open_run_pipeline
            from reason_iad.eval.answering import read_set

            self.run = open_run_pipeline(config, read_set(config))
        except UserError as err:
            self.error = str(err)

    def ready(self) -> str | None:
        """None once the model is loaded, else why it could not be."""
        return self.error

    def answer(self, shard: Sequence[EvalItem], knowledge: Mapping) -> ShardResult:
        """Answer one image's questions."""
        try:
            return ShardResult(records=tuple(answer_items(self.run.pipeline, shard, knowledge)))
        except UserError as err:
            return ShardResult(error=str(err))


@dataclass
class RayAnswerer:
    """Answers with Ray workers; same interface as `answering.LocalAnswerer` (start, answers, close)."""

    config: EvalRunConfig
    knowledge: Mapping[tuple[str, str], tuple[str, ...]]
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    workers: int = 0

    def start(self) -> None:
        """Start or join the cluster, create the workers and wait until every model is loaded."""
        ray = self._ray = require_ray()
        self._owns_cluster = not ray.is_initialized()
        self._actors: list = []
        if self._owns_cluster:
            self._init(ray)
        per_gpu, self.workers = self._plan(ray.cluster_resources())
        threads = self.cluster.threads_per_worker
        actor = ray.remote(EvalWorker).options(num_cpus=threads, num_gpus=per_gpu, max_restarts=0)
        self._actors = [actor.remote(self.config, threads) for _ in range(self.workers)]
        try:
            errors = ray.get([a.ready.remote() for a in self._actors], timeout=START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError as err:
            raise UserError(f"the Ray workers did not load the model within {START_TIMEOUT_S:.0f} s") from err
        except ray.exceptions.RayActorError as err:
            raise UserError(f"a Ray worker died while loading the model: {_first_line(err)}") from err
        failed = [e for e in errors if e]
        if failed:
            raise UserError(failed[0])
        self._knowledge_ref = ray.put(dict(self.knowledge))

    def _init(self, ray) -> None:
        address = self.cluster.address
        if address is None:
            wanted = (self.cluster.workers or DEFAULT_CPU_WORKERS) * self.cluster.threads_per_worker
            cpus = max(os.cpu_count() or 1, wanted)
            ray.init(
                address="local",
                num_cpus=cpus,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            )
            return
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as err:
            raise UserError(f"cannot join the Ray cluster at {address!r}: {_first_line(err)}") from err

    def _plan(self, resources: Mapping[str, float]) -> tuple[float, int]:
        """(GPUs per worker, workers) for the cluster's resources; refuse what it cannot hold."""
        gpus, cpus = float(resources.get("GPU", 0)), float(resources.get("CPU", 0))
        per_gpu = self.cluster.gpus_per_worker
        per_gpu = (1.0 if gpus else 0.0) if per_gpu is None else per_gpu
        workers = self.cluster.workers or (int(gpus // per_gpu) if per_gpu else DEFAULT_CPU_WORKERS)
        if per_gpu * workers > gpus + 1e-9:
            raise UserError(f"{workers} workers x {per_gpu:g} GPUs need more than the cluster's {gpus:g} GPUs")
        if workers < 1 or self.cluster.threads_per_worker * workers > cpus + 1e-9:
            raise UserError(
                f"{workers} workers x {self.cluster.threads_per_worker} CPUs do not fit the cluster's {cpus:g} CPUs"
            )
        return per_gpu, workers

    def answers(self, items: Sequence[EvalItem]) -> Iterator[AnswerRecord]:
        """Answer the items, one image per task, yielding each image's answers when it completes."""
        ray, shards = self._ray, deque(shard_by_image(items))
        pending: dict = {}

        def submit(actor) -> None:
            if shards:
                pending[actor.answer.remote(shards.popleft(), self._knowledge_ref)] = actor

        for actor in self._actors:
            for _ in range(self.cluster.tasks_in_flight):
                submit(actor)
        while pending:
            (done,), _ = ray.wait(list(pending), num_returns=1)
            actor = pending.pop(done)
            try:
                result: ShardResult = ray.get(done)
            except ray.exceptions.RayActorError as err:
                raise UserError(
                    f"a Ray worker died: {_first_line(err)}; answers so far are saved, rerun to resume"
                ) from err
            if result.error:
                raise UserError(result.error)
            submit(actor)
            yield from result.records

    def close(self) -> None:
        """Stop the workers, and the cluster if this answerer started it."""
        ray = getattr(self, "_ray", None)
        if ray is None:
            return
        for actor in getattr(self, "_actors", []):
            ray.kill(actor)
        if getattr(self, "_owns_cluster", False) and ray.is_initialized():
            ray.shutdown()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
