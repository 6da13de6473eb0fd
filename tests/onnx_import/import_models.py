"""Small plain-PyTorch classifiers exported the standard way, for the ``gapcam import`` tests and
``bench/import_models.py``: a ResNet-18-like and a MobileNetV2-like network (random weights).

Each exposes ``features(x)`` (the map the GAP averages) and ``fc`` (the linear layer), so a
torch forward hook gives the reference CAM ``einsum('ck,nkhw->nchw', fc.weight, features)``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.down(x))


class ResNet18Like(nn.Module):
    """torchvision's ResNet-18 topology (7x7 stem, max-pool, 4 x 2 basic blocks, avgpool, fc);
    ``widths=(64, 128, 256, 512)`` is ResNet-18 itself."""

    def __init__(self, num_classes: int = 5, widths=(16, 32, 64, 128)) -> None:
        super().__init__()
        w0 = widths[0]
        self.stem = nn.Sequential(
            nn.Conv2d(3, w0, 7, 2, 3, bias=False),
            nn.BatchNorm2d(w0),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        layers, cin = [], w0
        for i, w in enumerate(widths):
            layers += [BasicBlock(cin, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)]
            cin = w
        self.layers = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def features(self, x):
        return self.layers(self.stem(x))

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.block = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_res else y


class MobileNetV2Like(nn.Module):
    """MobileNetV2's building blocks (ReLU6, depthwise inverted residuals) with its head as
    torchvision writes it: ``x.mean([2, 3])`` (ReduceMean), Dropout, Linear."""

    def __init__(self, num_classes: int = 5, width: int = 16, last: int = 96) -> None:
        super().__init__()
        cfg = [(1, width, 1), (6, width * 3 // 2, 2), (6, width * 2, 2), (6, width * 4, 2)]
        layers = [
            nn.Conv2d(3, width, 3, 2, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU6(inplace=True),
        ]
        cin = width
        for t, c, s in cfg:
            layers += [InvertedResidual(cin, c, s, t), InvertedResidual(c, c, 1, t)]
            cin = c
        layers += [nn.Conv2d(cin, last, 1, bias=False), nn.BatchNorm2d(last), nn.ReLU6(True)]
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(last, num_classes)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.fc(self.dropout(self.features(x).mean([2, 3])))


class SqueezeExcite(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(c, max(4, c // 4), 1)
        self.fc2 = nn.Conv2d(max(4, c // 4), c, 1)

    def forward(self, x):
        s = nn.functional.adaptive_avg_pool2d(x, 1)
        return x * nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(s))))


class MobileNetV3Like(nn.Module):
    """MobileNetV3's operators: h-swish (HardSwish), squeeze-excite with h-sigmoid and Mul,
    residual Add, AdaptiveAvgPool + Linear head."""

    def __init__(self, num_classes: int = 5, width: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.Hardswish(),
            nn.Conv2d(width, width, 3, 1, 1, groups=width, bias=False),
            nn.BatchNorm2d(width),
            SqueezeExcite(width),
            nn.Conv2d(width, width * 2, 1, bias=False),
            nn.BatchNorm2d(width * 2),
            nn.Hardswish(),
            nn.Conv2d(width * 2, width * 2, 3, 2, 1, groups=width * 2, bias=False),
            nn.BatchNorm2d(width * 2),
            nn.Hardswish(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width * 2, num_classes)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


def randomize_batchnorm(net: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics (a fresh net's are 0/1), so the export really folds something."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return net.eval()


def export_standard(net: nn.Module, path: Path, size: int, softmax: bool = False) -> Path:
    """``torch.onnx.export`` as a user would write it: static batch 1, opset 17, TorchScript."""
    model = nn.Sequential(net, nn.Softmax(dim=1)) if softmax else net
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            (torch.zeros(1, 3, size, size),),
            str(path),
            input_names=["input"],
            output_names=["logits"],
            opset_version=17,
            dynamo=False,
        )
    return path


def torch_cam(net: nn.Module, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logits, CAM) from PyTorch, the CAM taken with a forward hook on ``net.features``."""
    captured = {}

    def hook(_module, _inputs, output):
        captured["f"] = output

    target = net.layers if hasattr(net, "layers") else net.body
    handle = target.register_forward_hook(hook)
    try:
        with torch.no_grad():
            logits = net(torch.from_numpy(x))
            cam = torch.einsum("ck,nkhw->nchw", net.fc.weight, captured["f"])
    finally:
        handle.remove()
    return logits.numpy(), cam.numpy()


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.reshape(-1), b.reshape(-1))[0, 1])
