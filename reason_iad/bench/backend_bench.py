"""`reason-iad bench backend`: prefix pass, cached suffix step and full-sequence step, measured in one run.

The target (DESIGN §5): a suffix step at least 10x cheaper than a full-sequence step at a 1600-token prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from reason_iad.backends.base import Message
from reason_iad.bench.timing import median_ms, peak_memory_mib

FILLER = (
    "A scratch is a thin straight or slightly curved line that is darker or brighter than the surface around it. "
    "A normal surface shows an even texture with only soft lighting changes across the object. "
)


@dataclass(frozen=True)
class BackendBenchResult:
    """Figures of one backend benchmark run."""

    model: str
    parameters: int
    prefix_tokens: int
    suffix_tokens: int
    prefix_ms: float
    suffix_step_ms: float
    full_step_ms: float
    peak_memory_mib: float

    @property
    def ratio(self) -> float:
        """How many times cheaper a cached suffix step is than a full-sequence step."""
        return self.full_step_ms / self.suffix_step_ms

    def report(self) -> str:
        """Human-readable summary, one figure per line."""
        return "\n".join(
            [
                f"model            {self.model} ({self.parameters / 1e6:.2f} M parameters)",
                f"prefix tokens    {self.prefix_tokens} (knowledge text + 2 images), "
                f"suffix tokens {self.suffix_tokens}",
                f"prefix pass      {self.prefix_ms:9.2f} ms (once per inspection)",
                f"suffix step      {self.suffix_step_ms:9.2f} ms (cached prefix, per candidate forward)",
                f"full-seq step    {self.full_step_ms:9.2f} ms (no cache, as without prefix caching)",
                f"ratio            {self.ratio:9.1f}x cheaper (target >= 10x)",
                f"peak memory      {self.peak_memory_mib:9.1f} MiB",
            ]
        )


def build_messages(backend, prefix_tokens: int, image_px: int) -> list[Message]:
    """A one-shot style prompt (template + query image) padded with knowledge text to about `prefix_tokens`."""
    template = Image.new("RGB", (image_px, image_px), (120, 110, 100))
    query = template.copy()
    query.paste((20, 20, 20), (image_px // 3, image_px // 3, image_px // 2, image_px // 2))
    per_filler = len(backend.encode_text(FILLER))
    base = backend.prepare([Message("user", ("Knowledge:", template, "Query:", query, "Any defect?"))]).length
    repeats = max(0, (prefix_tokens - base) // per_filler)
    word = " surface"
    words = max(0, prefix_tokens - base - repeats * per_filler) // len(backend.encode_text(word))
    knowledge = "Knowledge: " + FILLER * repeats + word * words
    return [Message("user", (knowledge, template, "Following is the query image:", query, "Is there any defect?"))]


def run_backend_bench(
    backend, prefix_tokens: int = 1600, suffix_tokens: int = 26, repeats: int = 10, image_px: int = 112
) -> BackendBenchResult:
    """Measure prefix, suffix-step and full-step times of `backend` at the given prefix length."""
    messages = build_messages(backend, prefix_tokens, image_px)
    prefix_ms = median_ms(lambda: backend.prepare(messages), repeats=max(2, repeats // 3), warmup=1)
    prefix = backend.prepare(messages)
    generator = torch.Generator().manual_seed(0)
    suffix = torch.randn(1, suffix_tokens, backend.hidden_size, generator=generator) * backend.embedding_rms
    full = torch.cat([prefix.embeds.float(), suffix], dim=1)
    full_positions = torch.cat(
        [prefix.position_ids, _suffix_positions(prefix, suffix_tokens)], dim=-1
    )  # [3, 1, P+S] or [1, P+S]
    with torch.no_grad():
        suffix_ms = median_ms(lambda: backend.suffix_forward(prefix, suffix), repeats)
        full_ms = median_ms(
            lambda: backend.model(inputs_embeds=full.to(backend.dtype), position_ids=full_positions, use_cache=False),
            repeats,
        )
    return BackendBenchResult(
        model=backend.name,
        parameters=sum(p.numel() for p in backend.model.parameters()),
        prefix_tokens=prefix.length,
        suffix_tokens=suffix_tokens,
        prefix_ms=prefix_ms,
        suffix_step_ms=suffix_ms,
        full_step_ms=full_ms,
        peak_memory_mib=peak_memory_mib(),
    )


def _suffix_positions(prefix, length: int) -> torch.Tensor:
    from reason_iad.backends.families import suffix_positions

    return suffix_positions(prefix.position_ids, prefix.next_position, 1, length)
