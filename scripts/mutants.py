"""Mutation check of the engine's rules: each mutant must make at least one engine test fail.

Each mutant reverses or removes one rule in a copy of the tree.

    .venv/bin/python scripts/mutants.py            # all mutants, one line each, then the count
    .venv/bin/python scripts/mutants.py --list     # only list them

The unmutated copy is run first and must pass. Fast rule tests (fake backend) run first; the tiny-model and
shipped-inspector engine tests only for a mutant that survives them.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("reason_iad", "tests", "demo", "examples", "knowledge", "pyproject.toml", "app.py")
FAST_TESTS = ("tests/test_reasoning_rules.py", "tests/test_reasoning_reward.py", "tests/test_reasoning_update.py")
SLOW_TESTS = ("tests/test_reasoning_engine.py", "tests/test_reasoning_climb.py")
ENGINE, UPDATE, REWARD, SUFFIX = (f"reason_iad/reasoning/{n}.py" for n in ("engine", "update", "reward", "suffix"))


@dataclass(frozen=True)
class Mutant:
    """One reversed or removed rule: text replacements (file, old, new), each old text found exactly once."""

    name: str
    edits: tuple[tuple[str, str, str], ...]


MUTANTS = (
    Mutant("ES update sign flipped", ((UPDATE, "return Step(latents + step,", "return Step(latents - step,"),)),
    Mutant("no ES update at all", ((ENGINE, "state.latents = update.latents\n", "state.latents = state.latents\n"),)),
    Mutant(
        "latent-entropy reward sign flipped",
        (
            (
                REWARD,
                "    return 1.0 - entropy.mean(-1)",
                "    return entropy.mean(-1) - 1.0",
            ),
        ),
    ),
    Mutant(
        "answer-entropy reward sign flipped",
        ((REWARD, "return 1.0 - entropy / math.log(max(n, 2))", "return entropy / math.log(max(n, 2)) - 1.0"),),
    ),
    Mutant(
        "injection kept without a reward gain",
        ((ENGINE, "if float(trial_rewards[best]) <= float(evaluation.rewards[0]):", "if False:"),),
    ),
    Mutant(
        "patch budget not enforced",
        (
            (
                ENGINE,
                "room = min(config.patches_per_step, config.patch_budget - len(state.kept))",
                "room = config.patches_per_step",
            ),
        ),
    ),
    Mutant("patches placed after the next latent", ((SUFFIX, "if latent == index]", "if latent == index - 1]"),)),
    Mutant(
        "sigma absolute, not relative to the embedding RMS",
        ((ENGINE, "sigma=config.sigma_scale * backend.embedding_rms", "sigma=config.sigma_scale"),),
    ),
    Mutant("no sigma decay", ((ENGINE, "state.sigma *= self.config.sigma_decay", "state.sigma *= 1.0"),)),
    Mutant(
        "best Z taken after the update",
        (
            (
                ENGINE,
                "        self._track_best(evaluation.rewards, candidates, step)\n        sigma = state.sigma\n",
                "        sigma = state.sigma\n",
            ),
            (
                ENGINE,
                "        state.latents = update.latents\n",
                "        state.latents = update.latents\n        self."
                "_track_best(evaluation.rewards, [(state.latents, tuple(state.kept))] * len(candidates), step)\n",
            ),
        ),
    ),
    Mutant(
        "final decode without the kept patches",
        ((ENGINE, "spec = self._spec(latents, kept)", "spec = self._spec(latents, ())"),),
    ),
    Mutant("attention scored over the template image", ((ENGINE, "image_index=self.query_index,", "image_index=0,"),)),
)


def _copy_tree(destination: Path) -> None:
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, destination / name)


def _apply(tree: Path, mutant: Mutant) -> None:
    for relative, old, new in mutant.edits:
        path = tree / relative
        text = path.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"mutant {mutant.name!r}: expected one {old!r} in {relative}, found {text.count(old)}")
        path.write_text(text.replace(old, new))


def _run_tests(tree: Path, tests: tuple[str, ...]) -> str | None:
    """The first failing test's id, or None when all pass."""
    env = os.environ | {
        "PYTHONPATH": str(tree),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    result = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if result.returncode == 0:
        return None
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", result.stdout, flags=re.MULTILINE)
    return failed[0] if failed else f"pytest exit {result.returncode}: {result.stdout[-300:]}"


def _check(mutant: Mutant | None) -> str | None:
    with tempfile.TemporaryDirectory(prefix="reason-iad-mutant-") as folder:
        tree = Path(folder)
        _copy_tree(tree)
        if mutant is not None:
            _apply(tree, mutant)
        return _run_tests(tree, FAST_TESTS) or _run_tests(tree, SLOW_TESTS)


def main(argv: list[str] | None = None) -> int:
    """Run every mutant; exit 1 if the unmutated tree fails or any mutant survives."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(m.name for m in MUTANTS))
        return 0
    started = time.monotonic()
    failure = _check(None)
    if failure:
        print(f"the unmutated tree fails ({failure}): fix that first")
        return 1
    survived = 0
    for mutant in MUTANTS:
        killer = _check(mutant)
        survived += killer is None
        print(f"{mutant.name:<52} {'killed by ' + killer if killer else 'SURVIVED'}", flush=True)
    print(f"{len(MUTANTS) - survived} of {len(MUTANTS)} mutants killed ({time.monotonic() - started:.0f} s)")
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main())
