"""Node parameter files (``ros__parameters`` YAML) applied to a replay.

Replay must decide like the node on the robot, and the node's behaviour is set by its parameter
file (smoothing, CAM class and threshold, overlay). Reading that same file with the node's own
settings type (:class:`~gapcam.node_settings.NodeSettings`) - instead of repeating the values
as replay flags - keeps the two from drifting apart.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from gapcam.errors import GapcamError
from gapcam.node_settings import NodeSettings


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


def load_node_params(paths: str | Path | list[str | Path], options: Any) -> Any:
    """A copy of replay ``options`` with the node settings the parameter files give.

    ``paths`` are applied in order, like several ``--params-file`` arguments of the node; the
    names and their meaning are the node's own (:class:`gapcam.node_settings.NodeSettings`).
    """
    params: dict[str, Any] = {}
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        params.update(read_ros_parameters(path))
    try:
        settings = NodeSettings.from_params(params, options.settings)
    except GapcamError as exc:
        where = ", ".join(str(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths))
        raise GapcamError(f"{where}: {exc}") from exc
    return dataclasses.replace(options, settings=settings)


__all__ = ["load_node_params", "read_ros_parameters"]
