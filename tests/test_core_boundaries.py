"""The library stays UI-free and light at import time."""

import subprocess
import sys

PROBE = """
import importlib, pkgutil, sys
import reason_iad
names = [m.name for m in pkgutil.walk_packages(reason_iad.__path__, "reason_iad.")]
for name in names:
    importlib.import_module(name)
print(len(names))
print("gradio" in sys.modules)
"""


def test_no_core_module_imports_gradio():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
    assert int(out[0]) >= 5, "the probe should have imported the core modules"
    assert out[1] == "False"


def test_import_reason_iad_is_light():
    probe = "import sys, reason_iad; print(sorted(m for m in ('torch', 'gradio', 'lancedb') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
