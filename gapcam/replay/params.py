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

#: SmoothingConfig fields, set by the node's ``smoothing.<field>`` parameters.
_SMOOTHING = ("ema_alpha", "switch_margin", "hold_frames", "min_confidence")


def read_ros_parameters(path: str | Path) -> dict[str, Any]:
    """Flattened ``ros__parameters`` of a ROS 2 parameter file, all node sections merged.

    Nested keys are joined with dots, as ROS does (``smoothing: {ema_alpha: 0.5}`` ->
    ``smoothing.ema_alpha``). Sections are merged in file order (``/**`` first, then per-node
    ones, as the launch files write them); replay applies the result to every camera.
    """
    from ruamel.yaml import YAML

    p = Path(path)
    if not p.is_file():
        raise GapcamError(f"{p}: no such parameter file")
    try:
        data = YAML(typ="safe").load(p.read_text())
    except Exception as exc:
        raise GapcamError(f"{p}: not valid YAML ({' '.join(str(exc).split())[:200]})") from exc
    sections: list[dict[str, Any]] = []
    _find_ros_parameters(data, sections)
    if not sections:
        raise GapcamError(f"{p}: no 'ros__parameters' section (expected a ROS 2 parameter file)")
    flat: dict[str, Any] = {}
    for section in sections:
        _flatten(section, "", flat)
    return flat


def _find_ros_parameters(node: Any, found: list[dict[str, Any]]) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("ros__parameters"), dict):
            found.append(node["ros__parameters"])
            return
        for v in node.values():
            _find_ros_parameters(v, found)


def _flatten(node: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for k, v in node.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            _flatten(v, f"{key}.", out)
        else:
            out[key] = v


#: Node parameter -> ReplayOptions field (besides smoothing.*).
_OPTIONS = {
    "cam_class": "cam_class",
    "cam_threshold": "cam_threshold",
    "overlay.scale": "overlay_scale",
    "overlay.alpha": "overlay_alpha",
    "overlay.jpeg_quality": "overlay_quality",
    "max_pixels": "max_pixels",
}


def load_node_params(paths: str | Path | list[str | Path], options: Any) -> Any:
    """A copy of replay ``options`` with the node's smoothing, CAM and overlay settings.

    ``paths`` are applied in order, like several ``--params-file`` arguments of the node.
    """
    params: dict[str, Any] = {}
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        params.update(read_ros_parameters(path))
    smoothing = {
        field: params[f"smoothing.{field}"]
        for field in _SMOOTHING
        if f"smoothing.{field}" in params
    }
    changes: dict[str, Any] = {
        attr: params[name] for name, attr in _OPTIONS.items() if name in params
    }
    try:
        if smoothing:
            changes["smoothing"] = dataclasses.replace(options.smoothing, **smoothing)
    except (TypeError, ValueError) as exc:
        raise GapcamError(f"invalid smoothing parameters in {paths}: {exc}") from exc
    return dataclasses.replace(options, **changes)


__all__ = ["SmoothingConfig", "load_node_params", "read_ros_parameters"]
