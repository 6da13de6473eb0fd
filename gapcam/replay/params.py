"""Node parameter files (``ros__parameters`` YAML) applied to a replay.

Replay must decide like the node on the robot, and the node's behaviour is set by its parameter
file (smoothing, CAM class and threshold). Reading that same file - instead of repeating the
values as replay flags - keeps the two from drifting apart.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from gapcam.decision import SmoothingConfig
from gapcam.errors import GapcamError

#: Parameter name -> SmoothingConfig field (node parameter names, flat or under ``smoothing.``).
_SMOOTHING = {
    "ema_alpha": "ema_alpha",
    "switch_margin": "switch_margin",
    "hold_frames": "hold_frames",
    "min_confidence": "min_confidence",
}


def read_ros_parameters(path: str | Path) -> dict[str, Any]:
    """Flattened ``ros__parameters`` of the first node in a ROS 2 parameter file.

    Nested keys are joined with dots, as ROS does (``smoothing: {ema_alpha: 0.5}`` ->
    ``smoothing.ema_alpha``).
    """
    from ruamel.yaml import YAML

    p = Path(path)
    if not p.is_file():
        raise GapcamError(f"{p}: no such parameter file")
    try:
        data = YAML(typ="safe").load(p.read_text())
    except Exception as exc:
        raise GapcamError(f"{p}: not valid YAML ({' '.join(str(exc).split())[:200]})") from exc
    found = _find_ros_parameters(data)
    if found is None:
        raise GapcamError(f"{p}: no 'ros__parameters' section (expected a ROS 2 parameter file)")
    flat: dict[str, Any] = {}
    _flatten(found, "", flat)
    return flat


def _find_ros_parameters(node: Any) -> dict[str, Any] | None:
    if isinstance(node, dict):
        if isinstance(node.get("ros__parameters"), dict):
            return node["ros__parameters"]
        for v in node.values():
            found = _find_ros_parameters(v)
            if found is not None:
                return found
    return None


def _flatten(node: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for k, v in node.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            _flatten(v, f"{key}.", out)
        else:
            out[key] = v


def load_node_params(path: str | Path, options: Any) -> Any:
    """A copy of replay ``options`` with the node's smoothing and CAM settings from ``path``."""
    params = read_ros_parameters(path)

    def get(name: str) -> Any:
        for key in (name, f"smoothing.{name}", f"decision.{name}"):
            if key in params:
                return params[key]
        return None

    smoothing = {f: get(p) for p, f in _SMOOTHING.items() if get(p) is not None}
    changes: dict[str, Any] = {}
    try:
        if smoothing:
            changes["smoothing"] = dataclasses.replace(options.smoothing, **smoothing)
    except (TypeError, ValueError) as exc:
        raise GapcamError(f"{path}: invalid smoothing parameters: {exc}") from exc
    for name in ("cam_class", "cam_threshold"):
        if get(name) is not None:
            changes[name] = get(name)
    return dataclasses.replace(options, **changes)


__all__ = ["SmoothingConfig", "load_node_params", "read_ros_parameters"]
