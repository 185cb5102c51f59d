"""`reason-iad bench memory`: visual memory speed and size (and, on request, quality) in one run.

Speed: backbone feature extraction per image; nearest-neighbour search of one image's patches against banks of
10k and 100k real patch features, exact in torch versus LanceDB (flat scan, then an IVF-PQ index); the size on
disk of a default category bank. Quality (`--quality`, `--elpv`): see `reason_iad.memory.quality`.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass

import numpy as np
import torch

from reason_iad.bench.timing import median_ms
from reason_iad.config import MemoryConfig
from reason_iad.memory.backbone import Backbone
from reason_iad.memory.bank import exemplar_views
from reason_iad.memory.detector import VisualMemory
from reason_iad.memory.scoring import nearest_distances
from reason_iad.memory.store import MemoryStore
from reason_iad.synth import CATEGORIES, DATASET, render_sample, sample_rng


@dataclass(frozen=True)
class SearchTiming:
    """Nearest-neighbour search of one image's patches against a bank of `bank_patches` rows."""

    bank_patches: int
    exact_ms: float
    lance_flat_ms: float
    lance_index_ms: float | None
    index_build_s: float | None
    index_relative_error: float | None  # median |d_index - d_exact| / d_exact


@dataclass(frozen=True)
class MemoryBenchResult:
    """Figures of one memory benchmark run."""

    backbone: str
    device: str
    threads: int
    query_patches: int
    extract_ms: float
    extract_batch_ms: float
    batch_size: int
    searches: tuple[SearchTiming, ...]
    bank_exemplars: int
    bank_patches: int
    bank_bytes: int
    bank_build_s: float
    inspect_ms: float

    def report(self) -> str:
        """Human-readable summary, one figure per line."""
        lines = [
            f"backbone         {self.backbone} on {self.device}, {self.threads} torch thread(s)",
            f"features         {self.extract_ms:8.1f} ms/image (one image), {self.extract_batch_ms:.1f} ms/image "
            f"(16 images, backbone batch {self.batch_size}); {self.query_patches} patches per image",
        ]
        for s in self.searches:
            index = (
                f"LanceDB IVF-PQ {s.lance_index_ms:8.1f} ms/image (built in {s.index_build_s:.1f} s, median "
                f"relative distance error {s.index_relative_error:.3f})"
                if s.lance_index_ms is not None
                else "LanceDB IVF-PQ not built"
            )
            lines.append(
                f"kNN {s.bank_patches // 1000:4d}k bank  exact torch {s.exact_ms:8.1f} ms/image; LanceDB flat "
                f"{s.lance_flat_ms:8.1f} ms/image; {index}"
            )
        lines += [
            f"bank on disk     {self.bank_bytes / 2**20:.1f} MiB for one category ({self.bank_exemplars} exemplars, "
            f"{self.bank_patches} patches kept, {self.bank_bytes / max(1, self.bank_patches):.0f} B/patch), "
            f"built in {self.bank_build_s:.1f} s",
            f"inspect          {self.inspect_ms:8.1f} ms/image end to end (features, exact kNN, map, calibration)",
        ]
        return "\n".join(lines)


def real_patch_pool(backbone: Backbone, count: int, category: str = "carpet") -> torch.Tensor:
    """At least `count` real patch features (views of normal SynthIAD renders): [count, D]."""
    parts, total, index = [], 0, 0
    while total < count:
        image = render_sample(category, None, sample_rng(0, category, index, "template")).image
        features = backbone.patch_features(exemplar_views(image, 8))
        parts.append(features.permute(0, 2, 3, 1).reshape(-1, features.shape[1]))
        total += parts[-1].shape[0]
        index += 1
    return torch.cat(parts)[:count].contiguous()


def time_search(pool: torch.Tensor, queries: torch.Tensor, size: int, repeats: int, build_index: bool) -> SearchTiming:
    """Exact torch search vs LanceDB (flat, then IVF-PQ) for the first `size` rows of `pool`."""
    bank = pool[:size]
    exact_ms = median_ms(lambda: nearest_distances(queries, bank), repeats, warmup=1)
    exact = nearest_distances(queries, bank).numpy()
    with tempfile.TemporaryDirectory(prefix="reason-iad-knn-") as folder:
        store = MemoryStore(folder, "bench", bank.shape[1])
        ids = np.full(size, "e", dtype=object)
        store.append_bank(store.patch_rows("bench", "c", ids, np.arange(size, dtype=np.int32), bank.numpy()))
        q = queries.numpy()
        flat_ms = median_ms(lambda: store.search_nearest("bench", "c", q), max(1, repeats // 3), warmup=1)
        if not build_index:
            return SearchTiming(size, exact_ms, flat_ms, None, None, None)
        started = time.perf_counter()
        store.ensure_index(min_rows=1)
        built = time.perf_counter() - started
        index_ms = median_ms(lambda: store.search_nearest("bench", "c", q), max(1, repeats // 3), warmup=1)
        found = store.search_nearest("bench", "c", q)
    error = float(np.median(np.abs(found - exact) / np.maximum(exact, 1e-6)))
    return SearchTiming(size, exact_ms, flat_ms, index_ms, built, error)


def default_bank(memory: VisualMemory, exemplars: int) -> tuple[float, int]:
    """Build the default 'carpet' bank from `exemplars` normal renders: (seconds, patches kept)."""
    images = [render_sample("carpet", None, sample_rng(0, "carpet", i, "template")).image for i in range(exemplars)]
    started = time.perf_counter()
    info = memory.add_exemplars(DATASET, "carpet", images)
    return time.perf_counter() - started, info.num_patches


def run_memory_bench(
    config: MemoryConfig,
    backbone: Backbone,
    bank_sizes: tuple[int, ...] = (10_000, 100_000),
    exemplars: int = 10,
    repeats: int = 5,
    build_index: bool = True,
) -> MemoryBenchResult:
    """Measure feature extraction, kNN search at each bank size, and a default bank's size and build time."""
    query_image = render_sample("carpet", "hole", sample_rng(2, "carpet", 0, "defect")).image
    batch = [render_sample(c, None, sample_rng(2, c, 0, "normal")).image for c in CATEGORIES] * 2
    extract_ms = median_ms(lambda: backbone.patch_features([query_image]), repeats)
    extract_batch_ms = median_ms(lambda: backbone.patch_features(batch), max(1, repeats // 2), warmup=1) / len(batch)
    features = backbone.patch_features([query_image])[0]
    queries = features.permute(1, 2, 0).reshape(-1, features.shape[0]).contiguous()
    pool = real_patch_pool(backbone, max(bank_sizes))
    searches = tuple(time_search(pool, queries, size, repeats, build_index) for size in bank_sizes)
    with tempfile.TemporaryDirectory(prefix="reason-iad-bank-") as folder:
        memory = VisualMemory(folder, config, backbone)
        build_s, kept = default_bank(memory, exemplars)
        inspect_ms = median_ms(lambda: memory.inspect(query_image, DATASET, "carpet"), repeats)
        size = memory.store.size_bytes()
    return MemoryBenchResult(
        backbone.name,
        config.device,
        torch.get_num_threads(),
        queries.shape[0],
        extract_ms,
        extract_batch_ms,
        getattr(backbone, "batch_size", 1),
        searches,
        exemplars,
        kept,
        size,
        build_s,
        inspect_ms,
    )
