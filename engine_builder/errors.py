"""Errors of the engine builder: one line for the user, never a traceback (see gapcam.errors)."""

from __future__ import annotations

from gapcam.errors import GapcamError


class EngineBuilderError(GapcamError):
    """A user-facing failure of an engine-builder command (exit status 2)."""


class TensorRTUnavailableError(EngineBuilderError):
    """The command needs TensorRT and a CUDA GPU, and this machine has neither."""


class VerificationFailedError(EngineBuilderError):
    """An engine or quantised model disagrees with the FP32 reference beyond the thresholds.

    Exit status 1: the tool worked, the model did not pass.
    """

    exit_code = 1
