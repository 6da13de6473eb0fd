"""The node's settings and their parameter names, declared once in the core."""

from __future__ import annotations

import pytest

from gapcam.decision import SmoothingConfig
from gapcam.errors import GapcamError
from gapcam.node_settings import (
    CARD_CAM_THRESHOLD,
    DEFAULT_OVERLAY,
    NO_FALLBACK_PARAM,
    PARAM_NAMES,
    NodeSettings,
    OverlaySettings,
)


def test_defaults_round_trip_through_ros_parameters():
    params = NodeSettings().to_params()
    assert set(params) == set(PARAM_NAMES)
    assert params["cam_threshold"] == CARD_CAM_THRESHOLD  # None: ROS parameters cannot be null
    assert params["overlay.alpha"] == DEFAULT_OVERLAY.alpha
    assert params["smoothing.hold_frames"] == SmoothingConfig().hold_frames
    assert NodeSettings.from_params(params) == NodeSettings()


def test_parameters_apply_over_a_base_and_others_are_ignored():
    base = NodeSettings(cam_class="blocked")
    s = NodeSettings.from_params(
        {"overlay.scale": 0.25, "smoothing.hold_frames": 4, "cam_threshold": 0.3, "threads": 2},
        base,
    )
    assert s.overlay == OverlaySettings(scale=0.25)
    assert s.smoothing == SmoothingConfig(hold_frames=4)
    assert (s.cam_class, s.cam_threshold) == ("blocked", 0.3)
    assert NodeSettings.from_params({"cam_threshold": -0.5}).cam_threshold is None
    assert NodeSettings.from_params({"overlay.jpeg_quality": 90.0}).overlay.jpeg_quality == 90


@pytest.mark.parametrize(
    ("ros_value", "core_value"),
    [("", None), (NO_FALLBACK_PARAM, ""), ("free", "free")],
)
def test_fallback_class_parameter(ros_value, core_value):
    """'' is the card's fallback (ROS cannot hold None), <top1> none, otherwise a class name."""
    s = NodeSettings.from_params({"fallback_class": ros_value})
    assert s.fallback_class == core_value
    assert s.to_params()["fallback_class"] == ros_value


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("smoothing.ema_alpha", 0.0, "ema_alpha must be in"),
        ("overlay.alpha", "opaque", "expected a number"),
        ("overlay.alpha", 1.5, "alpha must be in"),
        ("smoothing.hold_frames", 1.5, "expected an integer"),
        ("cam_class", 3, "expected str"),
        ("fallback_class", 1, "expected a class name"),
        ("overlay.scale", True, "expected a number"),
    ],
)
def test_bad_values_name_the_parameter(name, value, why):
    with pytest.raises(GapcamError, match=f"parameter {name}=.*{why}"):
        NodeSettings.from_params({name: value})
