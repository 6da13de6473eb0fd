"""The class names of the reference lane-change task: the one place they are spelled.

The model card carries the class list of whichever model is loaded; these are the names the
reference model, the synthetic generator and the ROS message constants are built from.
"""

from __future__ import annotations

BLOCKED = "blocked"
FREE = "free"
UNDEFINED = "undefined"

#: Order of the reference model's logits.
LANE_CHANGE_CLASSES: tuple[str, ...] = (BLOCKED, FREE, UNDEFINED)

#: The class reported when the evidence is too weak to act on.
FALLBACK_CLASS = UNDEFINED
