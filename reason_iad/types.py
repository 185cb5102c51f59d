"""Typed results of an inspection: what the engine streams per step and what it returns at the end."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class InjectedPatch:
    """An image token inserted into the latent sequence, with where it is in the query image."""

    token_index: int  # index among the query image's tokens
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in original-image pixels
    latent: int  # inserted right after this latent token
    step: int  # step at which it was kept
    gain: float = 0.0  # reward gain of the trial that kept it over the latents without it, at that step


@dataclass(frozen=True)
class ReasoningStep:
    """One iteration of latent reasoning (steps count from 1)."""

    step: int
    reward: float  # combined reward of the current latents with the kept patches
    reward_components: dict[str, float]
    latent_entropy: tuple[float, ...]  # normalised top-k entropy per latent token
    option_probs: dict[str, float]  # current answer distribution over the option letters
    best_reward: float
    injected: tuple[InjectedPatch, ...]  # all kept patches so far
    new_patches: tuple[InjectedPatch, ...]  # kept at this step
    sigma: float
    elapsed_ms: float
    clipped: bool = False  # the update's safety clip shortened this step's move of Z
    step_norm: float = 0.0  # length (Frobenius) of the move of Z taken at this step
    prior: str = "attention"  # the prior patch proposals used (says so when anomaly/mix fell back to attention)


@dataclass(frozen=True)
class UsedKnowledge:
    """A knowledge entry that went into the prompt, and why."""

    id: str
    title: str
    score: float
    pinned: bool  # chosen by the user rather than retrieved


@dataclass(frozen=True)
class AnomalySummary:
    """What the visual memory said about the query image (its map stays with the `AnomalyEvidence`)."""

    score: float  # calibrated, 0.5 suspicious, 1 anomalous
    raw_score: float
    verdict: str  # normal | suspicious | anomalous
    region: str
    box: tuple[int, int, int, int]
    shown_as: str  # how the evidence reached the model: none | highlight | contour | box | text
    peak: tuple[int, int] | None = None  # (x, y) pixel of the anomaly map's maximum


@dataclass(frozen=True)
class Evidence:
    """What an answer rests on, cited: the knowledge in the prompt, the kept patches, the visual memory's verdict."""

    knowledge: tuple[UsedKnowledge, ...] = ()
    patches: tuple[InjectedPatch, ...] = ()
    anomaly: AnomalySummary | None = None

    def lines(self) -> list[str]:
        """One human-readable citation per item, in the order knowledge, patches, anomaly map."""
        out = [
            f'knowledge {k.id} "{k.title}" ({"pinned" if k.pinned else f"retrieved, score {k.score:.3f}"})'
            for k in self.knowledge
        ]
        for p in self.patches:
            x0, y0, x1, y1 = (round(v) for v in p.box)
            out.append(f"patch ({x0},{y0})-({x1},{y1}) kept at step {p.step}, reward +{p.gain:.4f}")
        if self.anomaly is not None:
            a = self.anomaly
            out.append(f"anomaly map: {a.verdict}, peak {a.region}, score {a.score:.2f}, box {tuple(a.box)}")
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Evidence:
        """Rebuild from `dataclasses.asdict(evidence)` (as written by `Inspection.to_json`)."""
        anomaly = data.get("anomaly")
        return cls(
            knowledge=tuple(UsedKnowledge(**k) for k in data.get("knowledge", ())),
            patches=tuple(InjectedPatch(**(p | {"box": tuple(p["box"])})) for p in data.get("patches", ())),
            anomaly=AnomalySummary(
                **(
                    anomaly
                    | {"box": tuple(anomaly["box"]), "peak": tuple(anomaly["peak"]) if anomaly.get("peak") else None}
                )
            )
            if anomaly
            else None,
        )


@dataclass(frozen=True)
class Timings:
    """Where an inspection spent its time, in milliseconds."""

    prefix_ms: float
    steps_ms: float  # all reasoning steps together
    mean_step_ms: float  # 0 when there were no steps
    decode_ms: float
    total_ms: float

    @classmethod
    def of(cls, prefix_ms: float, steps_ms: float, num_steps: int, decode_ms: float) -> Timings:
        """The timings of a run of `num_steps` steps (mean and total derived)."""
        mean = steps_ms / num_steps if num_steps else 0.0
        return cls(prefix_ms, steps_ms, mean, decode_ms, prefix_ms + steps_ms + decode_ms)


@dataclass(frozen=True)
class Inspection:
    """The answer to one question about one image, with its evidence and the reasoning trace."""

    answer: str  # option letter
    answer_text: str
    option_probs: dict[str, float]
    rationale: str
    mode: str
    model: str
    steps: tuple[ReasoningStep, ...]
    best_step: int
    injected: tuple[InjectedPatch, ...]
    attention_map: tuple[tuple[float, ...], ...]  # latent -> query-image attention on the token grid (rows)
    timings: Timings
    config: dict = field(default_factory=dict)
    knowledge: tuple[UsedKnowledge, ...] = ()
    knowledge_version: int | None = None  # the knowledge-base version the entries were read at
    template: str = ""  # where the one-shot template came from ("", "given", or an exemplar id)
    anomaly: AnomalySummary | None = None  # the visual memory's evidence, when it was consulted

    @property
    def evidence(self) -> Evidence:
        """The cited evidence of the answer: knowledge entries, kept patches and the anomaly map's verdict."""
        return Evidence(self.knowledge, self.injected, self.anomaly)

    def to_json(self) -> str:
        """The whole inspection, steps and the cited evidence included, as JSON."""
        return json.dumps(dataclasses.asdict(self) | {"evidence": dataclasses.asdict(self.evidence)}, indent=2)


@dataclass(frozen=True, eq=False)
class AnomalyEvidence:
    """What the visual memory saw in one image.

    Attributes:
        anomaly_map: float32 [H, W] in [0, 1] at the image's size, calibrated (0.5 suspicious, 1 anomalous).
        raw_score: Uncalibrated image score (nearest-neighbour distance in feature space).
        score: Calibrated image score in [0, 1].
        verdict: "normal", "suspicious" or "anomalous".
        region: Where the map peaks on a 3x3 grid ("top left", "top", ..., "center", ..., "bottom right").
        box: (x0, y0, x1, y1) pixel box of the peak's region (x1, y1 exclusive).
        region_mask: bool [H, W], the connected blob around the map's peak (the box is its bounding box).
        dataset: Dataset of the memory bank used.
        category: Category of the memory bank used.
        backbone: Feature extractor name.
    """

    anomaly_map: np.ndarray
    raw_score: float
    score: float
    verdict: str  # "normal" | "suspicious" | "anomalous"
    region: str
    box: tuple[int, int, int, int]
    region_mask: np.ndarray
    dataset: str
    category: str
    backbone: str

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) of the inspected image."""
        return int(self.anomaly_map.shape[1]), int(self.anomaly_map.shape[0])


InspectionEvent = AnomalyEvidence | ReasoningStep | Inspection
"""What `Pipeline.inspect_stream` yields: the memory's evidence (when consulted), each step, then the result."""
