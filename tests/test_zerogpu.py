"""ZeroGPU durations: estimated per request from the settings and the model, and refused before a run too long."""

from demo.zerogpu import MIN_S, estimate_seconds, model_scale, too_long

DEEP = {"mode": "full", "num_steps": 15, "patches_per_step": 2}
FAST = {"mode": "full", "num_steps": 4, "patches_per_step": 2}


def test_the_estimate_grows_with_steps_patches_and_model_size():
    model = "Qwen/Qwen2.5-VL-7B-Instruct"
    assert estimate_seconds(DEEP, model) > estimate_seconds(FAST, model) > MIN_S - 1
    assert estimate_seconds({**DEEP, "patches_per_step": 8}, model) > estimate_seconds(DEEP, model)
    assert estimate_seconds({**DEEP, "mode": "knowledge"}, model) < estimate_seconds(DEEP, model)  # no steps
    assert estimate_seconds(DEEP, "Qwen/Qwen2.5-VL-72B-Instruct") > estimate_seconds(DEEP, model)
    assert model_scale("Qwen/Qwen2.5-VL-3B-Instruct") == 3 / 7 and model_scale("/models/mine") == 1.0
    assert estimate_seconds(DEEP, "embedded") == MIN_S  # the tiny default never needs more than the floor


def test_a_run_that_would_not_fit_is_refused_with_what_to_change(monkeypatch):
    model = "Qwen/Qwen2.5-VL-7B-Instruct"
    assert too_long(DEEP, model) is None  # within ZeroGPU's default 120 s
    monkeypatch.setenv("REASON_IAD_GPU_MAX_S", str(estimate_seconds(FAST, model)))
    why = too_long(DEEP, model)
    assert why and "'fast' preset" in why and f"{estimate_seconds(DEEP, model)} s" in why
    assert too_long(FAST, model) is None
    monkeypatch.setenv("REASON_IAD_GPU_MAX_S", "lots")
    assert too_long(DEEP, model) is None  # a bad setting falls back to the default allowance
