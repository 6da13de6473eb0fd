"""Choices of ``gapcam train`` that the command line needs without importing torch."""

from __future__ import annotations

#: ``small``: the from-scratch reference network; ``efficientnet_lite0``: ImageNet-pretrained.
ARCHITECTURES = ("small", "efficientnet_lite0")
