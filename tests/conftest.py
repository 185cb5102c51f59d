"""Shared test setup: offline, single-threaded, no analytics."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

try:  # two threads beside another busy process slow small steps 15-60x (reference/environment.md)
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a pinned runtime dependency
    pass
