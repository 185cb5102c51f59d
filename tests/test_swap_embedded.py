"""The swap test on the shipped inspector: exchanging two wood entries' titles moves its answers to the new titles.

A `slow` test: a wood-only SynthIAD set (seed 41, 40 images), the seed knowledge imported into a fresh knowledge
base with the tiny retriever, and `reason-iad kb swap` run on the hole and scratch entries (about 2 minutes).
"""

import re

import pytest

from reason_iad.cli import main
from reason_iad.synth import generate_dataset

pytestmark = pytest.mark.slow


def test_the_shipped_inspector_follows_swapped_titles_and_comes_back_after_the_restore(tmp_path, capsys):
    root, db = tmp_path / "data", tmp_path / "kb"
    generate_dataset(root, seed=41, per_category=40, categories=["wood"], templates=8)
    assert main(["kb", "import", "knowledge/synth-iad.jsonl", "--db", str(db), "--image-embedder", "tiny_clip"]) == 0
    capsys.readouterr()
    args = ["kb", "swap", "--db", str(db), "--data", str(root), "--category", "wood", "--defects", "hole,scratch"]
    assert main(args) == 0
    line = capsys.readouterr().out
    followed, questions = map(int, re.search(r"(\d+) of (\d+) Defect Classification answers followed", line).groups())
    restored = int(re.search(r"(\d+) of \d+ back after restoring", line).group(1))
    assert questions >= 15 and followed >= 0.6 * questions, line
    assert restored == questions, line
