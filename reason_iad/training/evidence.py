"""Training-time stand-in for the visual memory's evidence prompt (text line form).

At inference the visual memory (`reason_iad.memory`) turns a PatchCore anomaly map into a short line such as
"most anomalous region: top left, score 0.91". Training the inspector with the real memory on every image
would cost more CPU time than the whole training budget, so training draws the same line from the ground truth
with calibrated noise: the region is the mask's region (sometimes a wrong one), and the score is high for
defective and low for normal images with overlapping tails, so the model learns to weigh the evidence, not
copy it blindly.
"""

from __future__ import annotations

import numpy as np

from reason_iad.reasoning.prompt import EVIDENCE_HEADER
from reason_iad.synth.shapes import REGIONS

__all__ = ["EVIDENCE_HEADER", "evidence_line", "simulated_evidence"]
WRONG_REGION_RATE = 0.1
MISLEADING_SCORE_RATE = 0.1


def evidence_line(region: str, score: float) -> str:
    """The evidence text as it appears in a prompt: region and calibrated score in [0, 1]."""
    return f"most anomalous region: {region}, score {score:.2f}"


def simulated_evidence(rng: np.random.Generator, region: str | None) -> str:
    """Evidence for a training image from its ground truth (`region` None: a normal image)."""
    if region is not None:
        if rng.random() < WRONG_REGION_RATE:
            region = str(rng.choice([r for r in REGIONS if r != region]))
        misleading = rng.random() < MISLEADING_SCORE_RATE
        score = rng.uniform(0.3, 0.55) if misleading else rng.uniform(0.55, 1.0)
    else:
        region = str(rng.choice(REGIONS))
        misleading = rng.random() < MISLEADING_SCORE_RATE
        score = rng.uniform(0.45, 0.7) if misleading else rng.uniform(0.0, 0.45)
    return evidence_line(region, float(score))
