"""Options that a command and its actions share, so they may be given before or after the action.

argparse lets an option of `reason-iad kb` come only before the action (`kb --db DIR import FILE`). After the
parsers are built, `share_options(parser)` gives each action a copy of `parser`'s own options, and
`add_everywhere(parser, ...)` adds one option (such as `--verbose`) to a parser and all its subcommands. The
copies default to `argparse.SUPPRESS`: an action's parse sets the value only when the option is given there,
so `kb --db A list` and `kb list --db A` mean the same, and the default stays that of the first parser.

The model flags (`add_model_options`, read by `backend_from_args`) and the reasoning flags (`add_reasoning_options`,
read by `reasoning_from_args`) are declared here once for every command that takes them. A flag left unset (None)
keeps the value of the base config it is applied to, so `config.with_model_defaults` alone decides what depends on
the model.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, get_args, get_type_hints

from reason_iad.config import DEFAULT_MODEL, AppConfig, BackendConfig, ReasoningConfig, with_model_defaults

MODEL_OPTIONS: dict[str, dict[str, Any]] = {  # flag (= BackendConfig field) -> argparse options
    "model": {"help": "'embedded' (the small demonstration model), a local folder or a Hugging Face id"},
    "quantization": {
        "choices": get_args(get_type_hints(BackendConfig)["quantization"]),
        "help": "load the weights in 4 or 8 bits with bitsandbytes, or none",
    },
    "device": {"help": "where the model runs: auto (a CUDA GPU when one is visible, else the CPU), cpu, cuda, cuda:N"},
    "dtype": {
        "choices": ("auto", "float32", "bfloat16", "float16"),
        "help": "the weights' dtype; auto: bfloat16 on a GPU, float32 on the CPU",
    },
}
REASONING_OPTIONS: dict[str, tuple[str, str]] = {  # flag -> (ReasoningConfig field: its type or values, help)
    "mode": (
        "mode",
        "plain (the question alone), knowledge (with knowledge texts), latent (with latent reasoning) or full (both)",
    ),
    "steps": ("num_steps", "latent reasoning steps"),
    "latents": ("num_latent_tokens", "latent tokens"),
    "readout": ("readout", "answer letter at the answer position (MMAD) or option-text likelihood"),
    "seed": ("seed", "seed of the latent reasoning's noise"),
    "evidence": ("evidence", "show the visual memory's evidence to the model"),
    "prior": ("injection_prior", "what chooses the injected patches: attention, the anomaly map, or a mix"),
    "prior_gate": (
        "prior_gate",
        "with --prior anomaly or mix, try patches only where the anomaly map reaches this share of its peak "
        "(0: anywhere)",
    ),
    "max_new_tokens": ("max_new_tokens", "length of the generated reply"),
    "rationale": (
        "rationale",
        "what is decoded after the answer: the free reply MMAD parses (reply), an explanation after the answer "
        "phrase (continue) or in a follow-up turn (followup), or nothing (none)",
    ),
}
SHARED_REASONING_FLAGS = ("mode", "steps", "latents", "readout", "seed")


def subcommand_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parsers of `parser`'s subcommands (actions), one level down, each once."""
    seen: set[int] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if id(child) not in seen:
                    seen.add(id(child))
                    yield child


def _takes(parser: argparse.ArgumentParser, action: argparse.Action) -> bool:
    return any(flag in parser._option_string_actions for flag in action.option_strings)


def _copy_into(parser: argparse.ArgumentParser, action: argparse.Action) -> None:
    shared = copy.copy(action)
    shared.default, shared.required = argparse.SUPPRESS, False
    parser._add_action(shared)


def share_options(parser: argparse.ArgumentParser) -> None:
    """Let every action of `parser` accept `parser`'s own options (not `--help`) after the action too.

    Call it once the actions are added. An action that defines an option string itself keeps its own option.
    """
    own = [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
    for child in subcommand_parsers(parser):
        for action in own:
            if not _takes(child, action):
                _copy_into(child, action)


def add_everywhere(parser: argparse.ArgumentParser, *flags: str, **options) -> None:
    """Add an option to `parser` and, with a suppressed default, to every subcommand below it (any depth)."""
    action = parser.add_argument(*flags, **options)
    pending = list(subcommand_parsers(parser))
    while pending:
        child = pending.pop()
        if not _takes(child, action):
            _copy_into(child, action)
        pending += subcommand_parsers(child)


def _help(text: str, note: str | None, default: str | None) -> str:
    return " ".join(part for part in (text, note, f"(default: {default})" if default is not None else None) if part)


def add_model_options(
    parser: argparse.ArgumentParser,
    defaults: Mapping[str, str | None] | None = None,
    notes: Mapping[str, str] | None = None,
    flags: Sequence[str] = tuple(MODEL_OPTIONS),
) -> None:
    """Declare the model flags `--model`, `--quantization`, `--device`, `--dtype` (or just `flags`) on `parser`.

    Args:
        parser: The command's parser.
        defaults: A flag's default instead of `BackendConfig`'s, e.g. from the environment; None: keep the base
            config's value (see `backend_from_args`).
        notes: Text appended to a flag's help, e.g. the environment variable that sets its default.
        flags: The flags to declare; a command whose runner takes only a model name declares `("model",)`.
    """
    values = {field.name: field.default for field in dataclasses.fields(BackendConfig)} | dict(defaults or {})
    for name in flags:
        options = dict(MODEL_OPTIONS[name])
        text = options.pop("help")
        parser.add_argument(
            f"--{name}", default=values[name], help=_help(text, (notes or {}).get(name), values[name]), **options
        )


def backend_from_args(args: argparse.Namespace, base: BackendConfig | None = None) -> BackendConfig:
    """The `BackendConfig` the model flags ask for; a flag left unset (None) or not declared keeps `base`'s value."""
    given = {name: getattr(args, name) for name in MODEL_OPTIONS if getattr(args, name, None) is not None}
    return dataclasses.replace(base or BackendConfig(), **given)


def _model_default(field: str) -> str:
    """The help's default of a ReasoningConfig field, as `with_model_defaults` decides it."""
    embedded, other = (
        getattr(with_model_defaults(AppConfig(backend=BackendConfig(model=model))).reasoning, field)
        for model in (DEFAULT_MODEL, "any/other-model")
    )
    return str(other) if embedded == other else f"{embedded} for the embedded model, {other} otherwise"


def add_reasoning_options(
    parser: argparse.ArgumentParser,
    flags: Sequence[str] = SHARED_REASONING_FLAGS,
    notes: Mapping[str, str] | None = None,
    defaults: Mapping[str, str] | None = None,
) -> None:
    """Declare the reasoning flags (`--mode`, `--steps`, ...; any of `REASONING_OPTIONS`) on `parser`.

    Each defaults to None, which `reasoning_from_args` reads as "keep the base config's value"; the help names that
    value (`defaults` names it instead where the command fixes its own). `notes` appends text to a flag's help.
    """
    hints = get_type_hints(ReasoningConfig)
    for name in flags:
        field, text = REASONING_OPTIONS[name]
        choices = get_args(hints[field])  # a Literal field's values; () for an int
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            default=None,
            help=_help(text, (notes or {}).get(name), (defaults or {}).get(name) or _model_default(field)),
            **({"choices": choices} if choices else {"type": hints[field]}),
        )


def reasoning_from_args(args: argparse.Namespace, base: ReasoningConfig) -> ReasoningConfig:
    """`base` with the reasoning flags given; a flag left unset (None) or not declared keeps `base`'s value.

    `base` comes from `config.with_model_defaults` (plus what the command fixes); the values are checked by
    `ReasoningConfig` itself.
    """
    given = {
        field: getattr(args, name)
        for name, (field, _help_text) in REASONING_OPTIONS.items()
        if getattr(args, name, None) is not None
    }
    return dataclasses.replace(base, **given)


class PhaseBars:
    """One tqdm bar per phase of a long job, fed `(phase, done, total)` (questions/s and ETA shown)."""

    def __init__(self) -> None:
        self.bar, self.phase = None, None

    def update(self, phase: str, done: int, total: int) -> None:
        """Advance the phase's bar to `done` of `total`, opening a new bar when the phase changes."""
        from tqdm import tqdm

        if phase != self.phase:
            self.close()
            self.phase = phase
            self.bar = tqdm(
                total=total, desc=phase, unit="q", file=sys.stderr, disable=None, dynamic_ncols=True, smoothing=0.1
            )
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        """Close the open bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> PhaseBars:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
