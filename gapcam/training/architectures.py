"""The networks ``gapcam train --arch`` can build, and how a checkpoint names its network.

``small``: :class:`~gapcam.training.network.LaneChangeNet`, trained from scratch (128 px, stride 8).
``efficientnet_lite0``: :class:`~gapcam.training.efficientnet.EfficientNetLite0Cam`, optionally
from ImageNet weights (``--pretrained``), CAM at stride 16.

Both expose ``forward_cam(x) -> (logits, cam, features)``, ``fc`` (the linear head) and
``feature_stride``, which is all training and export need.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from gapcam.errors import GapcamError
from gapcam.model_card import InputSpec
from gapcam.training_options import ARCHITECTURES  # noqa: F401 - re-exported


def default_input(arch: str, pretrained: bool) -> InputSpec:
    """The input a network is trained at when the user gives no size or normalisation."""
    if arch == "efficientnet_lite0":
        from gapcam.training.efficientnet import PRETRAINED_MEAN, PRETRAINED_STD

        return InputSpec(width=224, height=224, mean=PRETRAINED_MEAN, std=PRETRAINED_STD)
    return InputSpec()


def build_network(
    arch: str,
    num_classes: int,
    spec: InputSpec,
    *,
    pretrained: bool = False,
    widths: tuple[int, ...] | None = None,
) -> nn.Module:
    """A fresh network (pretrained trunk where asked); raises :class:`GapcamError` on bad input."""
    if arch == "small":
        from gapcam.training.network import DEFAULT_WIDTHS, LaneChangeNet

        if pretrained:
            raise GapcamError("--pretrained exists only for --arch efficientnet_lite0")
        return LaneChangeNet(num_classes, tuple(widths or DEFAULT_WIDTHS))
    if arch == "efficientnet_lite0":
        from gapcam.training.efficientnet import EfficientNetLite0Cam

        return EfficientNetLite0Cam(num_classes, (spec.height, spec.width), pretrained=pretrained)
    raise GapcamError(f"unknown architecture {arch!r}; use one of {ARCHITECTURES}")


def describe(net: nn.Module, ckpt: dict[str, Any]) -> str:
    """One line for the card's provenance."""
    if ckpt.get("arch", "small") == "small":
        return f"LaneChangeNet widths={ckpt.get('widths')} stride={net.feature_stride}"
    pre = "ImageNet-pretrained" if ckpt.get("pretrained") else "from scratch"
    return (
        f"EfficientNet-Lite0 ({pre}), stock trunk, CAM head fusing the stride-16 and stride-32 "
        f"maps (total stride {net.feature_stride}), trainable blocks {ckpt.get('trainable_blocks')}"
    )
