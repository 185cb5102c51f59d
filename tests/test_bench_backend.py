from reason_iad.backends.tiny import TEST_SIZE, build_tiny_model
from reason_iad.backends.transformers_backend import TransformersBackend
from reason_iad.bench.backend_bench import run_backend_bench


def test_backend_bench_builds_the_requested_prefix_and_reports_every_figure():
    model, processor = build_tiny_model("qwen2_5_vl", TEST_SIZE)
    backend = TransformersBackend(model, processor, name="tiny")
    result = run_backend_bench(backend, prefix_tokens=300, suffix_tokens=8, repeats=2, image_px=64)
    assert 270 <= result.prefix_tokens <= 330  # within 10% of the request (BPE merges at the joins)
    assert result.suffix_tokens == 8
    assert min(result.prefix_ms, result.suffix_step_ms, result.full_step_ms, result.peak_memory_mib) > 0
    text = result.report()
    for label in ("prefix pass", "suffix step", "full-seq step", "ratio", "peak memory"):
        assert label in text
