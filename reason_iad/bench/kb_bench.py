"""`reason-iad bench kb`: knowledge search latency at 1k / 10k / 100k entries, flat and with an ANN index.

Rows carry random unit vectors (the cost of embedding is not what is measured); queries are semantic vector
searches scoped to one category, as retrieval runs them, plus full-text searches.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.expr import col, lit
from lancedb.index import FTS, Bitmap, IvfPq

from reason_iad.knowledge.schema import knowledge_model

WORDS = "scratch crack hole stain dent fold cut contamination colour broken missing bent thread rust".split()


@dataclass(frozen=True)
class Latency:
    """Latency of one search kind at one size."""

    entries: int
    kind: str
    median_ms: float
    p95_ms: float


def _table(db, size: int, dim: int, rng: np.random.Generator):
    vectors = rng.standard_normal((size, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    categories = [f"category{i % 50}" for i in range(size)]
    texts = [" ".join(rng.choice(WORDS, 12)) for _ in range(size)]
    fixed = {"dataset": "Bench", "source": "bench", "author": "bench", "created_at": "", "updated_at": ""}
    strings = {name: [value] * size for name, value in fixed.items()}
    strings |= {
        "id": [f"bench/{i}" for i in range(size)],
        "category": categories,
        "defect": [f"d{i}" for i in range(size)],
        "title": texts,
        "text": texts,
        "body": texts,
    }
    schema = knowledge_model(dim, None).to_arrow_schema()
    columns = {k: pa.array(v) for k, v in strings.items()}
    columns["text_vector"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dim)
    table = db.create_table(f"bench{size}", data=pa.table(columns, schema=schema), mode="overwrite")
    table.create_index("body", config=FTS(), replace=True)
    table.create_index("category", config=Bitmap())  # scoped searches prefilter on it
    return table, vectors


def _measure(fn, queries: int) -> tuple[float, float]:
    samples = []
    for i in range(queries + 3):
        started = time.perf_counter()
        fn(i)
        if i >= 3:  # warm-up
            samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def run_kb_bench(sizes=(1_000, 10_000, 100_000), dim: int = 384, queries: int = 50) -> list[Latency]:
    """Measure semantic (flat, then IVF-PQ indexed) and full-text search latency per table size."""
    rng = np.random.default_rng(0)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        db = lancedb.connect(folder)
        for size in sizes:
            table, vectors = _table(db, size, dim, rng)
            query_vectors = vectors[rng.integers(0, size, queries + 3)]

            def semantic(i: int, table=table, query_vectors=query_vectors) -> None:
                (
                    table.search(query_vectors[i], vector_column_name="text_vector")
                    .distance_type("cosine")
                    .where(col("category") == lit(f"category{i % 50}"), prefilter=True)
                    .limit(3)
                    .to_list()
                )

            def full_text(i: int, table=table) -> None:
                table.search(WORDS[i % len(WORDS)], query_type="fts", fts_columns="body").limit(10).to_list()

            results.append(Latency(size, "semantic, flat", *_measure(semantic, queries)))
            started = time.perf_counter()
            partitions = max(1, min(256, size // 4000))
            table.create_index(
                "text_vector",
                config=IvfPq(distance_type="cosine", num_partitions=partitions, num_sub_vectors=dim // 16),
            )
            build = (time.perf_counter() - started) * 1000
            results.append(
                Latency(
                    size,
                    f"semantic, IVF-PQ ({partitions} partitions, built in {build:.0f} ms)",
                    *_measure(semantic, queries),
                )
            )
            results.append(Latency(size, "full text (native FTS)", *_measure(full_text, queries)))
    return results


def format_kb_bench(results: list[Latency]) -> str:
    """A table of the results and the verdict on the 100k target."""
    lines = [f"{'entries':>8}  {'median ms':>9}  {'p95 ms':>7}  search"]
    lines += [f"{r.entries:>8}  {r.median_ms:9.2f}  {r.p95_ms:7.2f}  {r.kind}" for r in results]
    indexed = [r for r in results if r.entries == max(x.entries for x in results) and "IVF" in r.kind]
    if indexed:
        verdict = "met" if indexed[0].p95_ms <= 20 else "NOT met"
        lines.append(f"target p95 <= 20 ms at {indexed[0].entries} entries with an index: {verdict}")
    return "\n".join(lines)
