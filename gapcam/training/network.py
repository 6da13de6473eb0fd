"""The reference GAP classifier, in plain PyTorch.

Head = conv features -> global average pooling -> ONE linear layer (no hidden FC), so the Class
Activation Map is exact: ``M_c = sum_k w_k^c f_k`` and ``mean_xy(M_c) + b_c == logit_c``.

Input 128x128, total stride 8 -> a 16x16 CAM (finer than the 14x14 floor, so a car alongside or
far back is localised to ~8 input pixels). The last stage stays at stride 8 with plain 3x3
convolutions: each CAM cell sees about 75 input pixels, enough context to tell the adjacent lane
from the ego lane, but local enough that the evidence for ``blocked`` sits on the vehicle. (A
first version with dilations 2 and 4, receptive field ~140 px, classified as well but put its
CAM peak above the vehicles, in the sky: cam_pointing 0.24.) About 110 M multiply-adds per frame, small enough for a CPU fallback and to
train from scratch on a 2-core machine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - PyTorch convention
from torch import nn

#: Channels per stage; the last is K, the number of CAM feature maps.
DEFAULT_WIDTHS = (24, 48, 96, 128)


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class LaneChangeNet(nn.Module):
    """Plain CNN + GAP + linear; ``forward_cam`` returns logits, CAMs and features."""

    feature_stride = 8

    def __init__(self, num_classes: int = 3, widths: tuple[int, ...] = DEFAULT_WIDTHS) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.features = nn.Sequential(
            _conv(3, w1, stride=2),
            _conv(w1, w1),
            _conv(w1, w2, stride=2),
            _conv(w2, w2),
            _conv(w2, w3, stride=2),
            _conv(w3, w3),
            _conv(w3, w4),
            _conv(w4, w4),
        )
        self.fc = nn.Linear(w4, num_classes)
        self.num_classes = num_classes
        self.feature_channels = w4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return self.fc(F.adaptive_avg_pool2d(f, 1).flatten(1))

    def forward_cam(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits, cam, features)``; the CAM is a 1x1 convolution with the classifier's own
        weights (TensorRT fuses it and runs it in INT8; Einsum would not)."""
        f = self.features(x)
        logits = self.fc(F.adaptive_avg_pool2d(f, 1).flatten(1))
        cam = F.conv2d(f, self.fc.weight[:, :, None, None])
        return logits, cam, f


class CamExportWrapper(nn.Module):
    """What gets exported: one forward pass -> ``logits``, ``cam`` and optionally ``features``."""

    def __init__(self, net: LaneChangeNet, with_features: bool = True) -> None:
        super().__init__()
        self.net = net
        self.with_features = with_features

    def forward(self, x: torch.Tensor):  # noqa: ANN201 - tuple arity depends on with_features
        logits, cam, f = self.net.forward_cam(x)
        return (logits, cam, f) if self.with_features else (logits, cam)
