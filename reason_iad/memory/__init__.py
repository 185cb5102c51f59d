"""Visual memory: a PatchCore-style memory of normal exemplars per category, kept in LanceDB (DESIGN §2.8).

Real ImageNet-pretrained patch features (EfficientNet-Lite0 from PyPI, offline) of a category's normal
exemplars form its memory bank; an inspected image's patches are compared with the bank to give an anomaly map
and score, calibrated per category so they read normal / suspicious / anomalous. The evidence can be drawn for
a multimodal LLM (highlight / contour / box / a text line) and serves as a prior for dynamic visual injection.

Importing this package is light (numpy, PIL, scipy); torch, LanceDB and the backbone load in `open_memory`
(`reason_iad.memory.detector.VisualMemory`) and `load_backbone`.
"""

from __future__ import annotations

from pathlib import Path

from reason_iad.config import MemoryConfig
from reason_iad.memory.calibration import Calibration, Verdict, fit_calibration
from reason_iad.memory.evidence import (
    EVIDENCE_MODES,
    REGIONS,
    AnomalyEvidence,
    draw_evidence,
    evidence_text,
    locate_peak,
    token_prior,
)

__all__ = [
    "EVIDENCE_MODES",
    "REGIONS",
    "AnomalyEvidence",
    "Calibration",
    "MemoryConfig",
    "Verdict",
    "draw_evidence",
    "evidence_text",
    "fit_calibration",
    "load_backbone",
    "locate_peak",
    "open_memory",
    "token_prior",
]


def open_memory(uri: str | Path, config: MemoryConfig | None = None, backbone=None, exemplars=None):
    """Open (or create) the visual memory in the LanceDB folder `uri`: a `VisualMemory`.

    Args:
        uri: LanceDB folder (normally the knowledge base's; the memory's own tables are prefixed `memory_`).
        config: Memory settings (defaults: `MemoryConfig()`).
        backbone: A ready `Backbone` (default: the configured one, loaded offline).
        exemplars: The folder's open `ExemplarStore` (default: opened here), the one home of normal exemplars.

    Returns:
        The `reason_iad.memory.detector.VisualMemory`.
    """
    from reason_iad.memory.detector import VisualMemory

    return VisualMemory(uri, config, backbone, exemplars)


def load_backbone(name: str = "efficientnet-lite0", image_size: int = 256, device: str = "cpu"):
    """Build a registered patch-feature backbone offline (see `reason_iad.memory.backbone.load_backbone`)."""
    from reason_iad.memory.backbone import load_backbone as _load

    return _load(name, image_size, device)
