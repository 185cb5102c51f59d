from reason_iad.backends.tiny import TEST_SIZE, build_tiny_model
from reason_iad.backends.transformers_backend import TransformersBackend
from reason_iad.bench.latent_bench import run_latent_bench


def test_latent_bench_times_both_engines_and_both_inspections():
    model, processor = build_tiny_model("qwen2_5_vl", TEST_SIZE)
    backend = TransformersBackend(model, processor, name="tiny")
    result = run_latent_bench(backend, prefix_tokens=700, steps=2, answer_tokens=8, repeats=2, image_px=64)
    assert 560 <= result.prefix_tokens <= 760
    assert result.candidates_per_step == 1 + 2 * 2 + 4  # current, two antithetic pairs, one trial per latent
    assert min(result.cached_step_ms, result.dmlr_step_ms, result.plain_ms, result.full_ms) > 0
    text = result.report()
    for label in ("cached step", "DMLR-style step", "per-step ratio", "per-candidate", "full / direct"):
        assert label in text
