"""`reason-iad bench memory`: every figure reported; quality on the procedural set (slow)."""

import pytest

from reason_iad.bench.memory_bench import run_memory_bench
from reason_iad.bench.memory_quality import evaluate_procedural
from reason_iad.cli import main
from reason_iad.config import MemoryConfig
from reason_iad.memory.backbone import EfficientNetLiteBackbone


def test_memory_bench_reports_every_figure():
    config = MemoryConfig(image_size=64, views_per_exemplar=2)
    backbone = EfficientNetLiteBackbone(image_size=64)
    result = run_memory_bench(config, backbone, bank_sizes=(1500,), exemplars=2, repeats=1, build_index=True)
    assert result.query_patches == 64 and result.extract_ms > 0 and result.extract_batch_ms > 0
    (search,) = result.searches
    assert search.bank_patches == 1500 and search.exact_ms > 0 and search.lance_flat_ms > 0
    assert search.lance_index_ms is not None and 0 <= search.index_relative_error < 1
    assert result.bank_patches == 2 * 2 * 64 and result.bank_bytes > 0 and result.inspect_ms > 0
    text = result.report()
    for label in ("features", "kNN", "exact torch", "LanceDB flat", "IVF-PQ", "bank on disk", "inspect"):
        assert label in text


def test_bench_memory_command_validates_its_arguments(capsys):
    assert main(["bench", "memory", "--no-speed", "--exemplars", "1,10"]) == 2
    assert "exemplar count" in capsys.readouterr().err


@pytest.mark.slow
def test_procedural_quality_on_two_categories_meets_the_targets():
    config = MemoryConfig()
    backbone = EfficientNetLiteBackbone(image_size=config.image_size)
    report = evaluate_procedural(config, backbone, (10,), per_category=10, categories=("screw", "tile"))
    assert report.mean(10, "image_auroc") >= 0.9
    assert report.mean(10, "pixel_auroc") >= 0.9
    assert "screw" in report.report()
