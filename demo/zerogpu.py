"""ZeroGPU (Hugging Face Spaces): how long an inspection holds the GPU, estimated per request from its settings.

`@spaces.GPU(duration=...)` takes a function of the decorated handler's own arguments; `estimate_seconds` is that
function for `/inspect`. It starts from the measured costs of a 7B-shaped model on a whole H200 (a cached latent
forward about 60 ms per batch of candidates; DMLR-style steps with attention maps about 120 ms) and allows for a
ZeroGPU slice, several forwards per step and eager attention: about 0.25 s per step and patch-trial batch, 2 s for
the prefix, 50 ms per decoded token; scaled by the model's size and doubled for safety. A run whose estimate
exceeds what the Space allows (`REASON_IAD_GPU_MAX_S`, default 120 s, ZeroGPU's limit for visitors) is refused
before it starts, with the settings that would make it fit. Off ZeroGPU the decorator does nothing.
"""

from __future__ import annotations

import math
import os

PREFIX_S = 2.0  # prefix forward, vision encoder included (7B, ~1,600 tokens)
STEP_S = 0.25  # one latent step's candidate batch (7B)
TOKEN_S = 0.05  # one decoded token (answer and rationale)
LOAD_S = 5.0  # moving the weights onto the GPU slice at the first call
SAFETY = 2.0
MIN_S, DEFAULT_MAX_S = 20, 120


def model_scale(model: str) -> float:
    """Cost relative to a 7B model, from a size in the model's name ("...-3B-..."), else 1 (the embedded: 0.1)."""
    if model == "embedded":
        return 0.1
    for part in model.replace("/", "-").replace("_", "-").split("-"):
        if part[:-1].replace(".", "", 1).isdigit() and part[-1:].lower() == "b":
            return max(float(part[:-1]) / 7.0, 0.1)
    return 1.0


def estimate_seconds(settings: dict, model: str = "embedded", max_new_tokens: int = 64) -> int:
    """Seconds of GPU an inspection with these `/inspect` settings needs (rounded up, at least `MIN_S`)."""
    mode = settings.get("mode") or "full"
    steps = int(settings.get("num_steps") or 0) if mode in ("latent", "full") else 0
    per_step = STEP_S * (1 + int(settings.get("patches_per_step") or 0) / 2)  # patch trials ride in the batch
    decode = TOKEN_S * 2 * max_new_tokens  # the answer (letter read-out: a few tokens) and the rationale
    seconds = LOAD_S + SAFETY * model_scale(model) * (PREFIX_S + steps * per_step + decode)
    return max(MIN_S, math.ceil(seconds))


def max_seconds() -> int:
    """What the Space allows one call (`REASON_IAD_GPU_MAX_S`)."""
    try:
        return int(os.environ.get("REASON_IAD_GPU_MAX_S", DEFAULT_MAX_S))
    except ValueError:
        return DEFAULT_MAX_S


def too_long(settings: dict, model: str) -> str | None:
    """Why a run would not fit in the Space's GPU allowance (with what to change), or None when it fits."""
    needed, allowed = estimate_seconds(settings, model), max_seconds()
    if needed <= allowed:
        return None
    return (
        f"this run would hold the GPU for about {needed} s, more than the {allowed} s this Space allows: "
        "use fewer steps (the 'fast' preset) or fewer patches per step"
    )
