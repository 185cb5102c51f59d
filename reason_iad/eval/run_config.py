"""What defines an evaluation run, and its `run.json`: a run folder is resumed only with the same configuration.

`--limit`, the progress bar and the Ray settings are not part of it: a limited run can be continued with a larger
limit or none, in one process or on a cluster, and gives the same answers.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from reason_iad.config import AppConfig, BackendConfig, KnowledgeConfig, ReasoningConfig
from reason_iad.errors import UserError
from reason_iad.eval.answers import ANSWERS_FILE

RUN_FILE = "run.json"
RUN_FORMAT = 2  # 2: the configuration composes AppConfig ("app"); 1 had backend, reasoning, retriever at the top
KNOWLEDGE_MODES: tuple[str, ...] = ("none", "all", "retrieved")


@dataclass(frozen=True)
class EvalRunConfig:
    """The settings that decide a run's answers: the application's configuration plus what is about the run.

    `app` holds the model, the reasoning, the knowledge base's settings (its image embedder is the retriever of
    `--knowledge retrieved`) and the visual memory's, exactly as the studio and `infer` read them.
    """

    data: str  # the data root (absolute) or its mmad.json
    app: AppConfig = field(default_factory=AppConfig)
    shots: int = 1
    similar_template: bool = False
    knowledge: str = "all"  # none | all (MMAD: every entry of the category) | retrieved (knowledge base)
    categories: tuple[str, ...] = ()
    subtasks: tuple[str, ...] = ()
    skip_missing: bool = False

    @classmethod
    def of(
        cls,
        data: str,
        backend: BackendConfig | None = None,
        reasoning: ReasoningConfig | None = None,
        retriever: str = "",
        **run,
    ) -> EvalRunConfig:
        """A run of `backend` with `reasoning`, retrieving with the image embedder `retriever` ("": by meaning)."""
        app = AppConfig(
            backend=backend or BackendConfig(),
            reasoning=reasoning or ReasoningConfig(),
            knowledge=KnowledgeConfig(image_embedder=retriever),
        )
        return cls(data=data, app=app, **run)

    @property
    def backend(self) -> BackendConfig:
        """The model."""
        return self.app.backend

    @property
    def reasoning(self) -> ReasoningConfig:
        """The reasoning settings."""
        return self.app.reasoning

    @property
    def retriever(self) -> str:
        """The image embedder of `--knowledge retrieved` ("": rank by the question's meaning)."""
        return self.app.knowledge.image_embedder

    def __post_init__(self) -> None:
        if self.shots not in (0, 1):
            raise UserError(f"shots must be 0 or 1, not {self.shots}")
        if self.knowledge not in KNOWLEDGE_MODES:
            raise UserError(f"knowledge must be one of {', '.join(KNOWLEDGE_MODES)}, not {self.knowledge!r}")
        mode = self.reasoning.mode
        if self.reasoning.uses_knowledge and self.knowledge == "none":
            raise UserError(
                f"--mode {mode} puts knowledge in the prompt: use --knowledge all or retrieved, or --mode plain/latent"
            )
        if not self.reasoning.uses_knowledge and self.knowledge != "none":
            raise UserError(
                f"--mode {mode} uses no knowledge: drop --knowledge {self.knowledge} (or use --mode knowledge/full)"
            )
        if self.retriever and self.knowledge != "retrieved":
            raise UserError("an image retriever (--clip) is used only with --knowledge retrieved")

    def to_dict(self) -> dict:
        """JSON-ready data (tuples as lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict) -> EvalRunConfig:
        """Rebuild from `to_dict` output (raises `UserError` on unknown or bad fields)."""
        if not isinstance(data, dict):
            raise UserError("not an evaluation run configuration: expected a JSON object")
        try:
            values = dict(data)
            values["app"] = AppConfig.from_dict(values.get("app", {}), "run configuration: app")
            values["categories"] = tuple(values.get("categories", ()))
            values["subtasks"] = tuple(values.get("subtasks", ()))
            return cls(**values)
        except (TypeError, AttributeError) as err:
            raise UserError(f"not an evaluation run configuration: {err}") from err


def upgraded(config: dict, run_format: int) -> dict:
    """A run file's configuration in today's layout (format 1 kept backend, reasoning and retriever at the top)."""
    if run_format >= 2 or not isinstance(config, dict):
        return config
    config = dict(config)
    app = {"backend": config.pop("backend", {}), "reasoning": config.pop("reasoning", {})}
    retriever = config.pop("retriever", "")
    if retriever:
        app["knowledge"] = {"image_embedder": retriever}
    return {**config, "app": app}


def _differences(stored: dict, wanted: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(stored) | set(wanted)):
        old, new = stored.get(key), wanted.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            out += _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            out.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return out


def read_run_file(run_dir: str | Path) -> dict:
    """The parsed `run.json` of a run folder."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise UserError(f"{run_dir} is not an evaluation run folder (no {RUN_FILE})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read {path}: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise UserError(f"{path} is not a run file (no 'config' object)")
    run_format = data.get("format", 1)
    if not isinstance(run_format, int):
        raise UserError(f"{path}: 'format' must be a number, not {run_format!r}")
    return {**data, "config": upgraded(data["config"], run_format)}


def check_run_dir(run_dir: str | Path, config: EvalRunConfig) -> bool:
    """Whether `run_dir` holds a run to resume (False: absent or empty); refuse anything else. Writes nothing."""
    path = Path(run_dir)
    if path.exists() and not path.is_dir():
        raise UserError(f"run folder {path} is a file")
    if not path.exists() or not any(path.iterdir()):
        return False
    stored = read_run_file(path)["config"]
    changes = _differences(stored, config.to_dict())
    if changes:
        shown = "; ".join(changes[:4]) + ("; ..." if len(changes) > 4 else "")
        raise UserError(f"{path} holds a run with another configuration ({shown}): use a new --out folder")
    return True


def write_run_file(run_dir: str | Path, config: EvalRunConfig, facts: dict) -> Path:
    """Create the run folder if needed and write `run.json` atomically (config plus facts about the data)."""
    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    payload = {"format": RUN_FORMAT, "config": config.to_dict(), **facts, "answers_file": ANSWERS_FILE}
    staging = path / f".{RUN_FILE}.tmp"
    staging.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(staging, path / RUN_FILE)
    return path / RUN_FILE
