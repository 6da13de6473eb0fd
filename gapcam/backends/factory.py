"""Choosing and loading a backend by file type and availability."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from gapcam.backends.base import Backend
from gapcam.errors import GapcamError

BACKEND_CHOICES = ("auto", "onnxruntime", "tensorrt")

log = logging.getLogger(__name__)


def tensorrt_available() -> bool:
    """True where the TensorRT Python module and a CUDA driver can be imported."""
    return importlib.util.find_spec("tensorrt") is not None


def tensorrt_unavailable_reason() -> str | None:
    """Why TensorRT engines cannot run here (``None`` where they can): TensorRT's Python module,
    pycuda and a CUDA GPU are all needed. Used by the GPU tests to skip with a stated reason."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "needs the TensorRT Python module (run on a Jetson with JetPack)"
    try:
        import pycuda.driver as cuda
    except ImportError:
        return "needs pycuda (pip install pycuda on the Jetson)"
    try:
        cuda.init()
        if cuda.Device.count() == 0:
            return "needs a CUDA GPU"
    except cuda.Error as exc:
        return f"needs a usable CUDA GPU ({exc})"
    return None


def load_backend(model: str | Path, backend: str = "auto", **kwargs) -> Backend:
    """Load ``model`` (``.onnx`` or a TensorRT ``.plan``) with the requested runtime.

    ``auto`` picks TensorRT for a ``.plan`` (or where an engine is wanted and TensorRT exists)
    and ONNX Runtime otherwise; the choice is logged and reported by :meth:`Backend.describe`.
    """
    model = Path(model)
    if backend not in BACKEND_CHOICES:
        raise GapcamError(
            f"unknown backend {backend!r}; choose one of {', '.join(BACKEND_CHOICES)}"
        )
    is_plan = model.suffix in (".plan", ".engine", ".trt")
    if backend == "auto":
        backend = "tensorrt" if is_plan else "onnxruntime"
        log.info("backend auto -> %s for %s", backend, model.name)
    if backend == "tensorrt":
        if not is_plan:
            raise GapcamError(
                f"{model}: the tensorrt backend needs an engine (.plan); build one with "
                "`engine-builder build` or use --backend onnxruntime"
            )
        if not tensorrt_available():
            raise GapcamError(
                f"{model}: TensorRT is not installed here; run the engine on its Jetson or use "
                "the ONNX model with --backend onnxruntime"
            )
        from gapcam.backends.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(model, **kwargs)
    if is_plan:
        raise GapcamError(
            f"{model}: ONNX Runtime cannot run a TensorRT engine; pass the .onnx model"
        )
    from gapcam.backends.onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(model, **kwargs)
