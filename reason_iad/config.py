"""Configuration: one frozen dataclass per component, composed into `AppConfig`, with a JSON round trip.

Command-line flags and environment variables are read only at the edges (`app.py`, `reason_iad/cli.py`)
and mapped onto these fields; the library takes config objects, never globals.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_type_hints

from reason_iad.errors import UserError

Quantization = Literal["none", "4bit", "8bit"]
Mode = Literal["plain", "knowledge", "latent", "full"]
EvidenceMode = Literal["none", "highlight", "contour", "box", "text"]  # how the visual memory is shown to the model
InjectionPrior = Literal["attention", "anomaly", "mix"]  # what proposes the injected patches
Readout = Literal["letter", "likelihood"]
RationaleStyle = Literal["followup", "continue", "reply", "none"]  # how the explanation is decoded (rationale.py)
RewardName = Literal["answer", "latent", "confidence"]  # the rewards of `reasoning.reward.REWARDS`
DEFAULT_REWARD_WEIGHTS: dict[str, float] = {"answer": 1.0, "latent": 0.5, "confidence": 0.0}
MODES: tuple[str, ...] = get_args(Mode)
DEFAULT_MODEL = "embedded"
"""The model name that selects the small demonstration model shipped in `reason_iad/assets/`."""


@dataclass(frozen=True)
class BackendConfig:
    """Which multimodal LLM to load and how."""

    model: str = DEFAULT_MODEL  # "embedded", a local folder, or a Hugging Face model id
    quantization: Quantization = "none"
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    dtype: str = "auto"  # "auto", "float32", "bfloat16", "float16"

    def __post_init__(self) -> None:
        if self.quantization not in ("none", "4bit", "8bit"):
            raise UserError(f"quantization must be none, 4bit or 8bit, not {self.quantization!r}")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise UserError(f"dtype must be auto, float32, bfloat16 or float16, not {self.dtype!r}")
        if not self.model.strip():
            raise UserError("model must not be empty")


@dataclass(frozen=True)
class ReasoningConfig:
    """Test-time latent reasoning (DESIGN §2): defaults from DMLR's paper, all configurable."""

    mode: Mode = "full"  # plain | knowledge | latent | full
    num_latent_tokens: int = 4
    num_steps: int = 15
    num_noise_pairs: int = 2  # antithetic pairs per step (2 pairs = 4 noisy candidates)
    sigma_scale: float = 0.1  # noise std relative to the token-embedding RMS
    sigma_decay: float = 0.95
    learning_rate: float = 0.01
    optimizer: Literal["es", "autograd"] = "es"
    reward_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_REWARD_WEIGHTS))  # by RewardName
    reward_top_k: int = 10
    inject_patches: bool = True
    patches_per_step: int = 2
    patch_budget: int = 16
    patch_scoring: Literal["attention", "similarity"] = "attention"
    injection_prior: InjectionPrior = "attention"  # anomaly/mix need the visual memory
    evidence: EvidenceMode = "none"  # the visual memory shown to the model
    prior_weight: float = 0.5  # weight of the anomaly map in "mix"
    prior_gate: float = 0.5  # anomaly/mix propose only tokens whose prior reaches this share of its peak (0: all)
    readout: Readout = "letter"
    rationale: RationaleStyle = "followup"  # how it is decoded (rationale.py)
    rationale_prompt: str = "In one sentence, what in the image supports this answer?"
    max_new_tokens: int = 64
    min_new_tokens: int = 0  # decode at least this many tokens (benchmarks compare fixed-length answers)
    seed: int = 42

    def __post_init__(self) -> None:
        object.__setattr__(self, "reward_weights", _reward_weights(self.reward_weights))
        checks = [
            (1 <= self.num_latent_tokens <= 64, "num_latent_tokens must be between 1 and 64"),
            (0 <= self.num_steps <= 500, "num_steps must be between 0 and 500"),
            (1 <= self.num_noise_pairs <= 64, "num_noise_pairs must be between 1 and 64"),
            (0 < self.sigma_scale <= 10, "sigma_scale must be in (0, 10]"),
            (0 < self.sigma_decay <= 1, "sigma_decay must be in (0, 1]"),
            (0 < self.learning_rate <= 10, "learning_rate must be in (0, 10]"),
            (1 <= self.reward_top_k <= 1000, "reward_top_k must be between 1 and 1000"),
            (0 <= self.patches_per_step <= 64 and 0 <= self.patch_budget <= 256, "patch counts out of range"),
            (0 <= self.prior_weight <= 1, "prior_weight must be between 0 and 1"),
            (0 <= self.prior_gate <= 1, "prior_gate must be between 0 and 1"),
            (0 < len(self.rationale_prompt.strip()) <= 500, "rationale_prompt must hold 1 to 500 characters"),
            (1 <= self.max_new_tokens <= 2048, "max_new_tokens must be between 1 and 2048"),
            (0 <= self.min_new_tokens <= self.max_new_tokens, "min_new_tokens must be between 0 and max_new_tokens"),
        ]
        _check_choices(self)
        for ok, message in checks:
            if not ok:
                raise UserError(message)

    @property
    def uses_knowledge(self) -> bool:
        """Whether the knowledge block goes into the prompt."""
        return self.mode in ("knowledge", "full")

    @property
    def uses_latents(self) -> bool:
        """Whether latent think tokens are optimised."""
        return self.mode in ("latent", "full")


def choices(config_class: type, name: str) -> tuple[str, ...]:
    """The allowed values of a config field typed with a `Literal` (the one list every menu and flag reads)."""
    return get_args(_hints(config_class)[name])


@functools.cache
def _hints(config_class: type) -> dict[str, Any]:
    return get_type_hints(config_class)


def _check_choices(config) -> None:
    """Refuse a value outside its field's `Literal` choices, naming them."""
    for item in dataclasses.fields(config):
        allowed = choices(type(config), item.name)
        value = getattr(config, item.name)
        if allowed and all(isinstance(a, str) for a in allowed) and value not in allowed:
            raise UserError(f"{item.name} must be one of {', '.join(allowed)}, not {value!r}")


def _reward_weights(weights) -> dict[str, float]:
    """Reward weights by name, validated; names left out weigh 0."""
    names = get_args(RewardName)
    if not isinstance(weights, Mapping):
        raise UserError(f"reward_weights must map reward names ({', '.join(names)}) to weights")
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise UserError(f"unknown rewards {unknown}; known: {', '.join(names)}")
    try:
        out = {name: float(weights.get(name, 0.0)) for name in names}
    except (TypeError, ValueError) as err:
        raise UserError(f"reward weights must be numbers: {err}") from err
    if min(out.values()) < 0 or not all(w == w and w != float("inf") for w in out.values()):
        raise UserError("reward weights must be finite and not negative")
    if sum(out.values()) <= 0:
        raise UserError("at least one reward weight must be positive")
    return out


@dataclass(frozen=True)
class KnowledgeConfig:
    """Where the knowledge base lives and how much of it goes into a prompt."""

    db_uri: str = ""  # empty: <data dir>/knowledge; a folder or an object-store URI (s3://...)
    top_k: int = 3
    include_normal_entry: bool = True
    text_embedder: str = "minilm"  # semantic text search (see knowledge/embedders.py for the specs)
    image_embedder: str = ""  # image -> knowledge retrieval, e.g. "open_clip:ViT-B-32:/weights.safetensors"

    def __post_init__(self) -> None:
        if not 0 <= self.top_k <= 50:
            raise UserError(f"top_k must be between 0 and 50, not {self.top_k}")


ScoreMode = Literal["max", "topk"]
SearchMode = Literal["auto", "exact", "ann"]


@dataclass(frozen=True)
class MemoryConfig:
    """Visual memory settings (DESIGN §2.8); the defaults are the measured ones (`reason-iad bench memory`).

    Attributes:
        enabled: Whether inspections consult the visual memory (the engine/studio decide what to do with it).
        backbone: Feature extractor name (see `memory.backbone.BACKBONES`).
        image_size: Side of the square the backbone sees (224 gives a 28x28 patch grid, 256 a 32x32 one).
        views_per_exemplar: Most symmetric views (rotations/mirrors, 1..8) an exemplar adds while exemplars are few;
            1 for categories whose orientation matters.
        view_budget: Views shared out over a category's exemplars (views per exemplar = budget // exemplars).
        coreset_ratio: Fraction of a category's exemplar patches kept by greedy k-center (1.0 keeps all).
        coreset_min_patches: Banks with fewer patches are kept whole whatever the ratio.
        score_mode: Image score: "max" of the patch scores or the mean of the `score_top_k` largest.
        score_top_k: Patches averaged by the "topk" score.
        smoothing_sigma: Gaussian sigma of the anomaly map, in pixels of the backbone input.
        false_positive_rate: Share of normal images allowed above the "suspicious" threshold.
        calibration_exemplars: At most this many exemplars are scored leave-one-out for the calibration.
        search: "exact" (torch, whole bank in memory), "ann" (LanceDB vector index) or "auto" (by bank size).
        ann_min_patches: "auto" uses the LanceDB index from this bank size on.
        index_min_rows: The patch table gets a vector index once it holds this many rows.
        device: Torch device for the backbone and exact search ("cpu", "cuda", "auto").
    """

    enabled: bool = False
    backbone: str = "efficientnet-lite0"
    image_size: int = 256
    views_per_exemplar: int = 8
    view_budget: int = 80
    coreset_ratio: float = 0.1
    coreset_min_patches: int = 16_384
    score_mode: ScoreMode = "topk"
    score_top_k: int = 10
    smoothing_sigma: float = 4.0
    false_positive_rate: float = 0.05
    calibration_exemplars: int = 24
    search: SearchMode = "auto"
    ann_min_patches: int = 1_000_000
    index_min_rows: int = 262_144
    device: str = "cpu"

    def __post_init__(self) -> None:
        checks = [
            (
                64 <= self.image_size <= 1024 and self.image_size % 32 == 0,
                "image_size must be a multiple of 32 between 64 and 1024",
            ),
            (1 <= self.views_per_exemplar <= 8, "views_per_exemplar must be between 1 and 8"),
            (1 <= self.view_budget <= 10_000, "view_budget must be between 1 and 10000"),
            (0 < self.coreset_ratio <= 1, "coreset_ratio must be in (0, 1]"),
            (self.coreset_min_patches >= 0, "coreset_min_patches must not be negative"),
            (self.score_mode in ("max", "topk"), "score_mode must be max or topk"),
            (1 <= self.score_top_k <= 10_000, "score_top_k must be between 1 and 10000"),
            (0 <= self.smoothing_sigma <= 64, "smoothing_sigma must be between 0 and 64"),
            (0 < self.false_positive_rate < 0.5, "false_positive_rate must be in (0, 0.5)"),
            (2 <= self.calibration_exemplars <= 1000, "calibration_exemplars must be between 2 and 1000"),
            (self.search in ("auto", "exact", "ann"), "search must be auto, exact or ann"),
            (self.ann_min_patches >= 1 and self.index_min_rows >= 256, "ann_min_patches/index_min_rows too small"),
            (bool(self.backbone.strip()) and bool(self.device.strip()), "backbone and device must not be empty"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)


@dataclass(frozen=True)
class StudioConfig:
    """How the Gradio studio is served."""

    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise UserError(f"port must be between 1 and 65535, not {self.port}")


@dataclass(frozen=True)
class AppConfig:
    """Everything the studio and the CLI need, composed from the component configs."""

    backend: BackendConfig = field(default_factory=BackendConfig)
    reasoning: ReasoningConfig = field(default_factory=ReasoningConfig)
    knowledge: KnowledgeConfig = field(default_factory=KnowledgeConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    studio: StudioConfig = field(default_factory=StudioConfig)

    def to_json(self) -> str:
        """Serialise to a JSON string (nested objects per component)."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AppConfig:
        """Parse the output of `to_json`; unknown keys are refused with a clear message."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"config is not valid JSON: {err}") from err
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any, where: str = "config") -> AppConfig:
        """Build from `dataclasses.asdict` output; unknown keys and bad values are refused with a clear message."""
        return _build(cls, data, where)

    @classmethod
    def load(cls, path: str | Path) -> AppConfig:
        """Read a config file written by `to_json`."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


T = TypeVar("T")


def _build(kind: type[T], data: Any, where: str) -> T:
    if not isinstance(data, dict):
        raise UserError(f"{where} must be a JSON object")
    fields = {f.name: f for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f"{where}: unknown keys {unknown}; known: {sorted(fields)}")
    values = {}
    for name, value in data.items():
        nested = fields[name].default_factory  # type: ignore[misc]
        is_component = dataclasses.is_dataclass(nested) and isinstance(nested, type)
        values[name] = _build(nested, value, f"{where}.{name}") if is_component else value
    try:
        return kind(**values)
    except TypeError as err:
        raise UserError(f"{where}: {err}") from err


EMBEDDED_REASONING = {"readout": "likelihood", "evidence": "text", "injection_prior": "mix", "rationale": "continue"}
"""The reasoning settings whose default depends on the model: the embedded model's values (`with_model_defaults`)."""


def for_model(config: AppConfig, backend: BackendConfig) -> AppConfig:
    """`config` for another model: the model-dependent reasoning settings back to neutral, then its defaults."""
    neutral = ReasoningConfig()
    reasoning = dataclasses.replace(config.reasoning, **{k: getattr(neutral, k) for k in EMBEDDED_REASONING})
    return with_model_defaults(dataclasses.replace(config, backend=backend, reasoning=reasoning))


def with_model_defaults(config: AppConfig) -> AppConfig:
    """The defaults that suit the configured model.

    The embedded demonstration model was trained on option phrases with the visual memory's text evidence, so it
    reads answers out by likelihood, sees the evidence line, uses the anomaly map as injection prior,
    retrieves knowledge with the tiny CLIP and explains by continuing after its answer phrase (it was trained to;
    it never saw a follow-up question). Real MLLMs keep MMAD's letter read-out with the memory off, and explain in
    a follow-up turn.
    """
    if config.backend.model != DEFAULT_MODEL:
        return config
    reasoning = dataclasses.replace(config.reasoning, **EMBEDDED_REASONING)
    knowledge = config.knowledge
    if not knowledge.image_embedder:
        knowledge = dataclasses.replace(knowledge, image_embedder="tiny_clip")
    memory = dataclasses.replace(config.memory, enabled=True)
    return dataclasses.replace(config, reasoning=reasoning, knowledge=knowledge, memory=memory)
