"""`reason-iad bench latent`: our cached engine vs a DMLR-style step, and `full` vs `plain` end to end.

A DMLR-style step (their public code) runs, per iteration, a full-sequence eager forward that returns all
attention maps (patch scoring) and a second full-sequence forward for the reward. Ours evaluates every
candidate of a step in one batched suffix forward over the prefix cache. Both at the same prefix length.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from PIL import Image

from reason_iad.backends.families import suffix_positions
from reason_iad.bench.backend_bench import FILLER
from reason_iad.bench.timing import median_ms
from reason_iad.config import ReasoningConfig
from reason_iad.reasoning.engine import InspectionRequest, Reasoner
from reason_iad.reasoning.prompt import Question


@dataclass(frozen=True)
class LatentBenchResult:
    """Figures of one latent-reasoning benchmark run."""

    model: str
    prefix_tokens: int
    candidates_per_step: int
    cached_step_ms: float
    dmlr_step_ms: float
    plain_ms: float
    full_ms: float
    steps: int
    answer_tokens: int

    @property
    def per_candidate_ratio(self) -> float:
        """DMLR-style step time over our time per evaluated candidate."""
        return self.dmlr_step_ms * self.candidates_per_step / self.cached_step_ms

    def report(self) -> str:
        """Human-readable summary with both ratios."""
        return "\n".join(
            [
                f"model              {self.model}",
                f"prefix tokens      {self.prefix_tokens}; {self.candidates_per_step} candidates per step, one batch",
                f"cached step        {self.cached_step_ms:9.2f} ms (ours: all candidates, one suffix forward)",
                f"DMLR-style step    {self.dmlr_step_ms:9.2f} ms (eager full forward with attention + full reward "
                "pass)",
                f"per-step ratio     {self.dmlr_step_ms / self.cached_step_ms:9.1f}x cheaper (target >= 10x)",
                f"per-candidate      {self.per_candidate_ratio:9.1f}x cheaper (a DMLR step evaluates 1 candidate; "
                "on a "
                "CPU a batch costs about its size, on a GPU about one row)",
                f"direct answer      {self.plain_ms:9.1f} ms "
                f"(same prompt, no latent steps, {self.answer_tokens} tokens)",
                f"full inspection    {self.full_ms:9.1f} ms (T={self.steps}, same answer length)",
                f"full / direct      {self.full_ms / self.plain_ms:9.2f}x (target <= 1.5x)",
            ]
        )


def _request(backend, prefix_tokens: int, image_px: int) -> InspectionRequest:
    query = Image.new("RGB", (image_px, image_px), (120, 110, 100))
    query.paste((20, 20, 20), (image_px // 3, image_px // 3, image_px // 2, image_px // 2))
    template = Image.new("RGB", (image_px, image_px), (120, 110, 100))
    probe = Reasoner(backend, ReasoningConfig(mode="knowledge")).start(
        InspectionRequest(query, Question.anomaly(), template, knowledge=("x",))
    )
    per_filler = len(backend.encode_text(FILLER))
    repeats = max(1, (prefix_tokens - probe.prefix.length) // per_filler)
    return InspectionRequest(query, Question.anomaly(), template, knowledge=(FILLER * repeats,))


def _dmlr_step_ms(backend, session, repeats: int) -> float:
    """Two full-sequence forwards per step, the first with eager attention maps, batch 1, as DMLR's code."""
    prefix = session.prefix
    config = session.config
    suffix = torch.cat([session.state.latents, session.query.embeddings[: config.patches_per_step], session.header])
    full = torch.cat([prefix.embeds.float(), suffix[None]], dim=1).to(backend.dtype)
    positions = torch.cat(
        [prefix.position_ids, suffix_positions(prefix.position_ids, prefix.next_position, 1, suffix.shape[0])], dim=-1
    )

    model = backend.model
    current = model.config.get_text_config()._attn_implementation

    def step() -> None:
        model.set_attn_implementation({"text_config": "eager"})
        model(inputs_embeds=full, position_ids=positions, output_attentions=True, use_cache=False)
        model.set_attn_implementation({"text_config": current})
        model(inputs_embeds=full, position_ids=positions, use_cache=False)

    with torch.no_grad():
        return median_ms(step, repeats)


def run_latent_bench(
    backend, prefix_tokens: int = 1600, steps: int = 15, answer_tokens: int = 64, repeats: int = 5, image_px: int = 112
) -> LatentBenchResult:
    """Measure per-step cost (ours vs DMLR-style) and whole inspections (`full` vs `plain`)."""
    request = _request(backend, prefix_tokens, image_px)
    fixed = dict(max_new_tokens=answer_tokens, min_new_tokens=answer_tokens)
    full_config = ReasoningConfig(mode="full", num_steps=steps, **fixed)
    plain_config = dataclasses.replace(full_config, mode="plain")
    knowledge_plain = dataclasses.replace(plain_config, mode="knowledge")
    Reasoner(backend, full_config).run(request)  # warm-up
    full = [Reasoner(backend, full_config).run(request) for _ in range(2)]
    plain = [Reasoner(backend, knowledge_plain).run(request) for _ in range(2)]
    session = Reasoner(backend, full_config).start(request)
    config = full_config
    candidates = 1 + 2 * config.num_noise_pairs + config.num_latent_tokens
    return LatentBenchResult(
        model=backend.name,
        prefix_tokens=session.prefix.length,
        candidates_per_step=candidates,
        cached_step_ms=min(i.timings.mean_step_ms for i in full),
        dmlr_step_ms=_dmlr_step_ms(backend, session, repeats),
        plain_ms=min(i.timings.total_ms for i in plain),
        full_ms=min(i.timings.total_ms for i in full),
        steps=steps,
        answer_tokens=answer_tokens,
    )
