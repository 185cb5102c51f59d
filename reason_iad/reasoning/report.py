"""Plain-text rendering of an `Inspection` for the command line."""

from __future__ import annotations

from reason_iad.types import Inspection


def format_inspection(inspection: Inspection) -> str:
    """Answer, option probabilities, rationale, injected patches and timings, one block each."""
    t = inspection.timings
    lines = [
        f"model     {inspection.model}",
        f"mode      {inspection.mode}",
        f"answer    {inspection.answer}. {inspection.answer_text}",
        "options   " + "  ".join(f"{k}={v:.3f}" for k, v in inspection.option_probs.items()),
        f"rationale {inspection.rationale or '(empty)'}",
    ]
    if inspection.knowledge:
        version = f" (knowledge version {inspection.knowledge_version})" if inspection.knowledge_version else ""
        lines.append("knowledge " + "; ".join(f"{k.id} {k.score:.3f}" for k in inspection.knowledge) + version)
    if inspection.anomaly is not None:
        a = inspection.anomaly
        lines.append(
            f"memory    {a.verdict} (score {a.score:.2f}, raw {a.raw_score:.3f}), most anomalous region "
            f"{a.region} {a.box}; shown to the model as: {a.shown_as}"
        )
    if inspection.template:
        lines.append(f"template  {inspection.template}")
    if inspection.steps:
        rewards = ", ".join(f"{s.reward:.4f}" for s in inspection.steps)
        lines.append(f"steps     {len(inspection.steps)} (best {inspection.best_step}); rewards {rewards}")
        priors = sorted({s.prior for s in inspection.steps})
        clipped = sum(s.clipped for s in inspection.steps)
        lines.append(f"patches   proposed by {', '.join(priors)}; {clipped} of {len(inspection.steps)} steps clipped")
    citations = inspection.evidence.lines()
    lines += [f"{'evidence' if i == 0 else '':<9} {i + 1}. {line}" for i, line in enumerate(citations)]
    lines.append(
        f"timings   prefix {t.prefix_ms:.1f} ms, steps {t.steps_ms:.1f} ms "
        f"({t.mean_step_ms:.1f} ms/step), decode {t.decode_ms:.1f} ms, total {t.total_ms:.1f} ms"
    )
    return "\n".join(lines)
