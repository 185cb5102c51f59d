"""Replicas starting together on a fresh store: each table is created once with its first rows, never twice.

The studio's CI once failed here: two studios started on an empty `s3://` prefix; the second one's creation of the
exemplar table was rebased by LanceDB as an Overwrite over the first one's, whose seeding append was then refused
("Incompatible transaction"). Four processes open the stores at the same instant, on S3 and on a folder.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest_plugins = ["s3_server"]  # the s3_server and s3_uri fixtures
ROOT = Path(__file__).resolve().parents[1]
OPENER = """
import sys, time
from PIL import Image
from reason_iad.knowledge.embedders import ThumbnailEmbedder
from reason_iad.memory.exemplars import ExemplarStore
from reason_iad.synth.exemplars import gallery_exemplars
from reason_iad.annotations import AnnotationStore
from reason_iad.paths import EXAMPLES_DIR
uri, start, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
time.sleep(max(0.0, start - time.time()))
store = ExemplarStore(uri, seed=gallery_exemplars)
AnnotationStore(uri)
store.add(Image.new("RGB", (32, 32), (40 * n, 9, 9)), "Mine", f"part{n}", author=f"replica{n}")
"""


def _open_together(uri: str, env: dict[str, str], count: int = 4) -> list[subprocess.CompletedProcess]:
    start = time.time() + 12  # after every interpreter has imported the library
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, uri, str(start), str(n)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in range(count)
    ]
    return [(p, p.communicate(timeout=240)[0]) for p in processes]


def _check(uri: str, results) -> None:
    from reason_iad.memory.exemplars import ExemplarStore

    for process, output in results:
        assert process.returncode == 0, output[-3000:]
    exemplars = ExemplarStore(uri).list()
    seeds = [e for e in exemplars if e.record.author == "seed"]
    assert len(seeds) == 8 and len({e.id for e in seeds}) == 8  # the gallery once, not once per replica
    added = sorted(e.record.author for e in exemplars if e.record.author != "seed")
    assert added == [f"replica{n}" for n in range(len(results))]


@pytest.mark.slow
def test_s3_four_replicas_starting_together_create_and_seed_each_table_once(s3_uri):
    env = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    _check(s3_uri, _open_together(s3_uri, env))


@pytest.mark.slow
def test_four_processes_starting_together_on_a_folder_create_and_seed_each_table_once(tmp_path):
    env = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    _check(str(tmp_path / "db"), _open_together(str(tmp_path / "db"), env))
