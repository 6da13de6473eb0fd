"""Where the shipped model lives: the one place every tool takes its default model from.

``GAPCAM_MODEL`` overrides it (a container with a non-editable install, a retrained model).
"""

from __future__ import annotations

import os
from pathlib import Path

#: The repository checkout (meaningful for an editable install / source tree).
REPO_ROOT = Path(__file__).resolve().parent.parent

#: The shipped model, relative to the checkout (and to the ROS package's share directory).
SHIPPED_MODEL = Path("models") / "lane_change.onnx"


def default_model() -> Path:
    """``$GAPCAM_MODEL`` if set, else ``models/lane_change.onnx`` of the checkout."""
    env = os.environ.get("GAPCAM_MODEL")
    return Path(env) if env else REPO_ROOT / SHIPPED_MODEL
