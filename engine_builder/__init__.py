"""ONNX -> TensorRT engines (FP32/FP16/INT8) for Jetson, with calibration, verification and benchmarks.

Everything up to the TensorRT boundary (quantisation, calibration sets and caches, metadata,
compatibility decisions, comparison against ONNX Runtime) runs on any CPU machine; ``tensorrt``
and ``pycuda`` are imported lazily, only by the commands that build or run engines.
"""

from gapcam import __version__  # noqa: F401 - one version for the whole distribution
