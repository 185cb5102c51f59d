"""`reason-iad bench gpu`: the prepared GPU check's table, proved on a CPU in `--dry-run`, and its 7B shapes."""

import math
import subprocess
from pathlib import Path

import torch

from reason_iad import cli
from reason_iad.backends.families import QWEN
from reason_iad.bench.gpu_bench import DRY_RUN_DEFAULTS
from reason_iad.bench.qwen_shape import (
    build_random_model,
    full_attention_blocks,
    quantize_nf4,
    qwen25_vl_config,
    shape_processor,
    token_ids,
)

ROOT = Path(__file__).resolve().parents[1]
QWEN_IDS = {
    "image_token_id": 151655,
    "video_token_id": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
}


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_bench_gpu_dry_run_prints_one_table_with_both_precisions(capsys):
    assert cli.main(["bench", "gpu", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| precision |"))
    names = _cells(lines[header])
    for column in ("prefix ms", "ms / latent step (C cand.)", "full/plain", "peak RSS GiB"):
        assert column in names
    rows = {cells[0]: dict(zip(names, cells, strict=True)) for cells in map(_cells, lines[header + 2 :])}
    assert set(rows) == {"bf16", "nf4"}
    for row in rows.values():
        step = float(row["ms / latent step (C cand.)"].split()[0])
        figures = [float(row["prefix ms"]), step, float(row["full/plain"].rstrip("x")), float(row["peak RSS GiB"])]
        assert all(math.isfinite(v) and v > 0 for v in figures)
        assert row["answer"] in ("A", "B", "C", "D")
    assert f"T={DRY_RUN_DEFAULTS['steps']}" in lines[header - 1]


def test_bench_gpu_refuses_unknown_precisions_and_a_missing_gpu(capsys):
    assert cli.main(["bench", "gpu", "--dry-run", "--precisions", "fp8"]) == 2
    assert "--precisions" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert cli.main(["bench", "gpu"]) == 2
        assert "CUDA" in capsys.readouterr().err


def test_bench_gpu_full_shape_is_qwen25_vl_7b_instruct():
    config = qwen25_vl_config(QWEN_IDS)
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.intermediate_size, text.num_hidden_layers) == (3584, 18944, 28)
    assert (text.num_attention_heads, text.num_key_value_heads, text.vocab_size) == (28, 4, 152064)
    assert text.hidden_size // text.num_attention_heads == 128
    assert text.rope_parameters["mrope_section"] == [16, 24, 24] and text.rope_parameters["rope_theta"] == 1e6
    assert (text.max_position_embeddings, text.rms_norm_eps, config.tie_word_embeddings) == (128000, 1e-6, False)
    assert (vision.depth, vision.hidden_size, vision.num_heads, vision.intermediate_size) == (32, 1280, 16, 3420)
    assert (vision.out_hidden_size, vision.patch_size, vision.spatial_merge_size, vision.window_size) == (
        3584,
        14,
        2,
        112,
    )
    assert vision.fullatt_block_indexes == [7, 15, 23, 31] and full_attention_blocks(2) == [1]
    assert (config.image_token_id, config.video_token_id) == (151655, 151656)
    assert (config.vision_start_token_id, config.vision_end_token_id) == (151652, 151653)


def test_bench_gpu_nf4_quantises_the_language_model_only():
    import bitsandbytes as bnb

    tokenizer = shape_processor().tokenizer
    config = qwen25_vl_config(token_ids(tokenizer), 2, 2, small=True, vocab_size=len(tokenizer))
    model = build_random_model(config, "cpu")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert float(model.model.language_model.norm.weight.min()) == 1.0  # norm scales ones, weights random
    assert float(model.model.visual.merger.ln_q.weight.min()) == 1.0
    assert 0.01 < float(model.lm_head.weight.float().std()) < 0.03
    assert quantize_nf4(model) == 2 * 7
    kinds = {name: type(module) for name, module in model.named_modules()}
    assert kinds["lm_head"] is torch.nn.Linear
    assert all(kind is not bnb.nn.Linear4bit for name, kind in kinds.items() if name.startswith(QWEN.vision_modules))
    assert kinds["model.language_model.layers.1.mlp.down_proj"] is bnb.nn.Linear4bit


def test_gpu_check_script_parses_and_its_wheels_stay_out_of_git():
    subprocess.run(["bash", "-n", str(ROOT / "scripts" / "gpu-check.sh")], check=True)
    assert ".gpu-wheels/" in (ROOT / ".gitignore").read_text().splitlines()
