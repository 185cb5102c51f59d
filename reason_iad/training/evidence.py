"""The visual memory's evidence for every training image, computed by the real memory (not simulated).

At inference the visual memory (`reason_iad.memory`) turns a PatchCore anomaly map into one line such as
"verdict: anomalous; most anomalous region: top left, score 0.91". Training prompts carry exactly that line,
computed the same way: a memory whose bank per category is the training pool's normal templates inspects every
pool image once (about 80 ms per image on a 2-core CPU). Its mistakes (missed defects, wrong regions, suspicious
normals) are the ones the inspector will meet at inference, so it learns how far to trust the line.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable

from reason_iad.memory.evidence import evidence_text
from reason_iad.reasoning.prompt import EVIDENCE_HEADER
from reason_iad.synth.catalog import DATASET

__all__ = ["EVIDENCE_HEADER", "pool_evidence"]


def pool_evidence(pool, log: Callable[[str], None] = print, memory=None) -> dict[str, int]:
    """Set `evidence` on every image of `pool` from a visual memory of the pool's templates.

    Args:
        pool: A `training.data.ImagePool` (its templates become the memory's normal exemplars per category).
        log: Progress messages.
        memory: A `VisualMemory` to use (default: a fresh one in a temporary folder, default settings).

    Returns:
        Counts of the verdicts on defective and normal images ("defect/anomalous", "normal/normal", ...) and
        of correct regions on defective images ("region_correct"), for the training log and the model card.
    """
    from reason_iad.memory.detector import VisualMemory

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reason-iad-train-memory-") as folder:
        memory = memory or VisualMemory(folder)
        for category, templates in pool.templates.items():
            memory.add_exemplars(
                DATASET, category, [t.image for t in templates], labels=[f"template {i}" for i in range(len(templates))]
            )
        counts: dict[str, int] = {}
        for item in pool.images:
            evidence = memory.inspect(item.image, DATASET, item.facts.category)
            item.evidence = evidence_text(evidence)
            kind = "normal" if item.facts.defect is None else "defect"
            counts[f"{kind}/{evidence.verdict}"] = counts.get(f"{kind}/{evidence.verdict}", 0) + 1
            if item.facts.defect is not None:
                counts["region_correct"] = counts.get("region_correct", 0) + int(evidence.region == item.facts.region)
    log(
        f"visual memory evidence for {len(pool.images)} training images in {time.perf_counter() - started:.0f}s: "
        f"{dict(sorted(counts.items()))}"
    )
    return counts
