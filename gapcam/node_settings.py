"""What shapes the node's output for a frame, with its defaults: declared once, ROS-free.

The ROS node declares its parameters from :meth:`NodeSettings.to_params` (names as ROS spells
them, ``smoothing.ema_alpha``) and reads them back with :meth:`NodeSettings.from_params`; bag
replay reads the node's parameter files through the same method. So a default or a parameter
name lives here and nowhere else, and replay decides and draws exactly as the node would.
Settings of the ROS plumbing alone (QoS, input transport, threads, model path) stay in the
node's table (``cam_node/params.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gapcam.cam import PREDICTED
from gapcam.decision import SmoothingConfig
from gapcam.errors import GapcamError
from gapcam.imageio import DEFAULT_MAX_PIXELS

#: ROS parameters cannot be null: a negative ``cam_threshold`` means "the model card's"
#: (``NodeSettings.cam_threshold is None``).
CARD_CAM_THRESHOLD = -1.0
#: ``fallback_class`` as a ROS parameter: empty is the model card's fallback
#: (``NodeSettings.fallback_class is None``); this value is none at all (publish the top-1,
#: ``""`` in the core).
NO_FALLBACK_PARAM = "<top1>"


@dataclass(frozen=True)
class OverlaySettings:
    """The debug overlay (``~/cam_overlay``): how often, how big, how opaque, how compressed."""

    max_rate_hz: float = 10.0  #: most overlays per second (0 = never), only while watched
    scale: float = 0.5  #: overlay size relative to the input image
    alpha: float = 0.45  #: heat map opacity (0 = camera only, 1 = heat map only)
    jpeg_quality: int = 80  #: of ``~/cam_overlay/compressed``

    def __post_init__(self) -> None:
        if not 0.0 < self.scale <= 1.0:
            raise ValueError("overlay scale must be in (0, 1]")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError("overlay alpha must be in [0, 1]")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError("overlay jpeg_quality must be in 1..100")
        if self.max_rate_hz < 0:
            raise ValueError("overlay max_rate_hz must be >= 0")


DEFAULT_OVERLAY = OverlaySettings()


@dataclass(frozen=True)
class NodeSettings:
    """Everything besides the model that decides what the node publishes for a frame."""

    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    overlay: OverlaySettings = DEFAULT_OVERLAY
    #: map used for the box and overlay: predicted, eigen or a class name
    cam_class: str = PREDICTED
    #: fraction of the CAM maximum kept for the box; None: the model card's (0.2 without one)
    cam_threshold: float | None = None
    #: frames older than this (header stamp) are dropped as stale; 0 disables the check
    max_age_s: float = 0.5
    #: at most one log line per this many seconds for repeated bad frames
    error_throttle_s: float = 5.0
    #: period of the /diagnostics status
    diagnostics_period_s: float = 1.0
    #: frames claiming more pixels are refused before decoding (decode errors)
    max_pixels: int = DEFAULT_MAX_PIXELS
    #: low-confidence fallback class: None the model card's, "" none (the top-1 is published)
    fallback_class: str | None = None

    def __post_init__(self) -> None:
        if self.max_pixels < 1:
            raise ValueError("max_pixels must be >= 1")

    def to_params(self) -> dict[str, bool | int | float | str]:
        """The settings as ROS parameters (dotted names), ``None`` written as ROS can hold it."""
        return {name: _to_ros(name, get(self)) for name, (get, _) in _PARAMS.items()}

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], base: NodeSettings | None = None
    ) -> NodeSettings:
        """``base`` (default: the defaults) with the parameters named in ``params`` applied.

        Other names are ignored (node-only parameters, or another node's in a shared file).
        Raises :class:`GapcamError` naming the parameter when a value has the wrong type or
        breaks a rule (e.g. ``smoothing.ema_alpha: 0``).
        """
        settings = base or cls()
        for name, (get, put) in _PARAMS.items():
            if name not in params:
                continue
            value = params[name]
            default = get(cls())
            try:
                settings = put(settings, _from_ros(name, value, default))
            except (TypeError, ValueError) as exc:
                raise GapcamError(f"parameter {name}={value!r}: {exc}") from exc
        return settings


def _to_ros(name: str, value: Any) -> bool | int | float | str:
    if name == "fallback_class":
        return "" if value is None else (value or NO_FALLBACK_PARAM)
    return CARD_CAM_THRESHOLD if value is None else value


def _from_ros(name: str, value: Any, default: Any) -> Any:
    if name == "cam_threshold":
        value = float(_number(value))
        return None if value < 0 else value
    if name == "fallback_class":
        if not isinstance(value, str):
            raise TypeError("expected a class name, '' (the card's) or " + NO_FALLBACK_PARAM)
        return None if value == "" else ("" if value == NO_FALLBACK_PARAM else value)
    if isinstance(default, (bool, str)):
        if not isinstance(value, type(default)):
            raise TypeError(f"expected {type(default).__name__}")
        return value
    if isinstance(default, int):
        if isinstance(value, float) and not value.is_integer():
            raise TypeError("expected an integer")
        return int(_number(value))
    return float(_number(value))


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("expected a number")
    return value


def _smoothing(field_name: str) -> tuple[Any, Any]:
    return (
        lambda s: getattr(s.smoothing, field_name),
        lambda s, v: dataclasses.replace(
            s, smoothing=dataclasses.replace(s.smoothing, **{field_name: v})
        ),
    )


def _overlay(field_name: str) -> tuple[Any, Any]:
    return (
        lambda s: getattr(s.overlay, field_name),
        lambda s, v: dataclasses.replace(
            s, overlay=dataclasses.replace(s.overlay, **{field_name: v})
        ),
    )


def _top(field_name: str) -> tuple[Any, Any]:
    return (
        lambda s: getattr(s, field_name),
        lambda s, v: dataclasses.replace(s, **{field_name: v}),
    )


#: ROS parameter name -> (read it from settings, settings with it replaced).
_PARAMS: dict[str, tuple[Any, Any]] = {
    "cam_class": _top("cam_class"),
    "cam_threshold": _top("cam_threshold"),
    "max_age_s": _top("max_age_s"),
    "error_throttle_s": _top("error_throttle_s"),
    "diagnostics.period_s": _top("diagnostics_period_s"),
    "max_pixels": _top("max_pixels"),
    "fallback_class": _top("fallback_class"),
    **{f"overlay.{f.name}": _overlay(f.name) for f in dataclasses.fields(OverlaySettings)},
    **{f"smoothing.{f.name}": _smoothing(f.name) for f in dataclasses.fields(SmoothingConfig)},
}

#: The node parameters :class:`NodeSettings` covers (the rest are the node's own plumbing).
PARAM_NAMES: tuple[str, ...] = tuple(_PARAMS)
