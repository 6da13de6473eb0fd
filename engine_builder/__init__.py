"""ONNX -> TensorRT engines (FP32/FP16/INT8) for Jetson, with calibration, verification and benchmarks.

Everything up to the TensorRT boundary (quantisation, calibration sets and caches, metadata,
compatibility decisions, comparison against ONNX Runtime) runs on any CPU machine; ``tensorrt``
and ``pycuda`` are imported lazily, only by the commands that build or run engines.
"""

__version__ = "0.1.0"
