"""Where the node's files are: the shipped model, configs, launch files (source tree or install).

Run from the repository (editable install, tests, CI) the files are found beside the sources, so a
retrained model is picked up without reinstalling; on an installed robot they come from the
package share directory (``share/cam_node``), where setup.py puts them.
"""

from __future__ import annotations

from pathlib import Path

from gapcam.errors import GapcamError
from gapcam.shipped import SHIPPED_MODEL

PACKAGE = "cam_node"
#: Empty ``model_path``: the shipped model, found like any relative path (checkout, then share).
DEFAULT_MODEL = SHIPPED_MODEL

#: ros2_ws/src/cam_node/cam_node/paths.py -> the repository root (only meaningful in a checkout).
_PACKAGE_SRC = Path(__file__).resolve().parent.parent
_REPO = _PACKAGE_SRC.parent.parent.parent


def repo_root() -> Path | None:
    """The repository checkout this package runs from, or ``None`` once installed elsewhere."""
    return _REPO if (_REPO / "ros2_ws" / "src" / PACKAGE).is_dir() else None


def share_dir() -> Path | None:
    """``share/cam_node`` of the ament install, or ``None`` where the package is not installed."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except Exception:  # PackageNotFoundError, or no ament index at all
        return None


def config_dir() -> Path:
    """The package's ``config`` directory (YAML parameters, rviz)."""
    if repo_root() is not None:
        return _PACKAGE_SRC / "config"
    share = share_dir()
    if share is None:
        raise GapcamError("cam_node config not found: not in a checkout and not installed")
    return share / "config"


def resolve_model(path: str) -> Path:
    """``model_path`` parameter -> an existing file; empty means the shipped model."""
    p = Path(path).expanduser() if path else DEFAULT_MODEL
    candidates = [p] if p.is_absolute() else [Path.cwd() / p]
    if not p.is_absolute():
        repo, share = repo_root(), share_dir()
        if repo is not None:
            candidates.append(repo / p)
        if share is not None:
            candidates.append(share / p)
    for c in candidates:
        if c.is_file():
            return c.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise GapcamError(f"model_path {path or str(DEFAULT_MODEL)!r}: no such file (tried {tried})")
