#!/usr/bin/env bash
# Make ./.venv a ready virtual environment for this checkout, reusing a cached one when the pins are unchanged.
# The cache lives outside the clone, keyed by the hash of the requirements files:
#   ${REASON_IAD_VENV_CACHE:-${XDG_CACHE_HOME:-~/.cache}/reason-iad/venvs}/<hash>
# A cache entry counts only once its stamp file is written, so an interrupted install is rebuilt, not reused.
set -euo pipefail
cd "$(dirname "$0")/.."

python_bin=${PYTHON:-python3.11}
command -v "$python_bin" >/dev/null 2>&1 || python_bin=python3
hash=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
stamp_name=.reason-iad-requirements

if [ -f ".venv/$stamp_name" ] && [ "$(cat ".venv/$stamp_name")" = "$hash" ]; then
  venv=$(cd .venv && pwd -P)
else
  cache_root=${REASON_IAD_VENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reason-iad/venvs}
  venv="$cache_root/$hash"
  if [ ! -f "$venv/$stamp_name" ]; then
    echo "reason-iad: creating the virtual environment in $venv (first run: several minutes)" >&2
    rm -rf "$venv"
    mkdir -p "$cache_root"
    "$python_bin" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    # torch is pinned in requirements.txt itself, so pip never pulls another build.
    "$venv/bin/python" -m pip install --quiet -r requirements.txt -r requirements-dev.txt
    echo "$hash" > "$venv/$stamp_name"
  fi
  if [ -e .venv ] && [ ! -L .venv ]; then rm -rf .venv; fi
  ln -sfn "$venv" .venv
fi

# Cheap, and re-points the editable install at this checkout (a cached venv may have served another clone).
"$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e . >/dev/null 2>&1 \
  || "$venv/bin/python" -m pip install --no-deps --no-build-isolation -e .
