"""User-facing errors.

Every mistake a user can make (a missing file, an unreadable image, a model card that does not
match its ONNX) is raised as :class:`GapcamError` with a single line that says what is wrong and
what to do. Command-line tools print that line and exit non-zero instead of a traceback; the ROS
node reports it on ``/diagnostics`` and keeps running.
"""

from __future__ import annotations


class GapcamError(Exception):
    """An error whose message is one line meant for the user, not a bug."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class ImageDecodeError(GapcamError):
    """An image buffer or file could not be turned into pixels."""


class ModelContractError(GapcamError):
    """A model card and the model it describes disagree, or the card is invalid."""
