"""Configuration: one frozen dataclass per component, composed into `AppConfig`, with a JSON round trip.

Command-line flags and environment variables are read only at the edges (`app.py`, `reason_iad/cli.py`)
and mapped onto these fields; the library takes config objects, never globals.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from reason_iad.errors import UserError

Quantization = Literal["none", "4bit", "8bit"]
Mode = Literal["plain", "knowledge", "latent", "full"]
MODES: tuple[str, ...] = ("plain", "knowledge", "latent", "full")
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
class KnowledgeConfig:
    """Where the knowledge base lives and how much of it goes into a prompt."""

    db_uri: str = ""  # empty: <data dir>/knowledge.lance; a folder or an object-store URI (s3://...)
    top_k: int = 3
    include_normal_entry: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.top_k <= 50:
            raise UserError(f"top_k must be between 0 and 50, not {self.top_k}")


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
    knowledge: KnowledgeConfig = field(default_factory=KnowledgeConfig)
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
        return _build(cls, data, "config")

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
