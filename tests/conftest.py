"""Shared test setup: offline, single-threaded, no analytics."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "REASON_IAD_DATA_DIR" not in os.environ:  # never write a knowledge base into the user's home from tests
    import tempfile

    os.environ["REASON_IAD_DATA_DIR"] = tempfile.mkdtemp(prefix="reason-iad-test-data-")

try:  # two threads beside another busy process slow small steps 15-60x (reference/environment.md)
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a pinned runtime dependency
    pass


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory):
    """Tiny random-weight models of every family, saved once per session like real checkpoints."""
    from reason_iad.backends.tiny import FAMILIES, save_tiny_model

    root = tmp_path_factory.mktemp("tiny-models")
    return {family: save_tiny_model(family, root / family) for family in FAMILIES}


@pytest.fixture(scope="session")
def tiny_backends(tiny_model_dirs):
    """The tiny models loaded through `load_backend`, exactly as a user's folder would be."""
    from reason_iad.backends.loading import load_backend
    from reason_iad.config import BackendConfig

    return {name: load_backend(BackendConfig(model=str(path), device="cpu")) for name, path in tiny_model_dirs.items()}


def pytest_collection_modifyitems(config, items):
    """`gpu` tests are collected only where a CUDA device exists; elsewhere they are deselected, never skipped."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    if has_cuda:
        return
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if gpu:
        config.hook.pytest_deselected(items=gpu)
        items[:] = [item for item in items if not item.get_closest_marker("gpu")]
