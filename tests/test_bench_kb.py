from reason_iad.bench.kb_bench import format_kb_bench, run_kb_bench


def test_kb_bench_measures_flat_indexed_and_full_text_per_size():
    results = run_kb_bench(sizes=(1000,), dim=64, queries=5)
    kinds = [r.kind for r in results]
    assert kinds[0] == "semantic, flat" and kinds[1].startswith("semantic, IVF-PQ") and kinds[2].startswith("full")
    assert all(0 < r.median_ms <= r.p95_ms for r in results)
    assert "target p95 <= 20 ms at 1000 entries" in format_kb_bench(results)
