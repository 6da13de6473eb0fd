"""A stand-in for ``tensorrt`` and ``pycuda.driver`` that runs the code paths on CPU.

The fake exposes, per TensorRT version, only what that version has (no ``BuilderFlag.FP16``,
``IInt8EntropyCalibrator2`` or ``int8_calibrator`` on 11; no ``IProgressMonitor`` on 8.x; no
``STRONGLY_TYPED`` before 10), so using a removed name on a version's path fails here as it would
on the device. The "engine" is the parsed ONNX run by ONNX Runtime; "device memory" is a dict of
byte buffers keyed by address, and every GPU call checks that the calling thread has a CUDA context
pushed - the rule the backend must follow for ROS executor threads.
"""

from __future__ import annotations

import enum
import itertools
import json
import threading
import types
from pathlib import Path

import numpy as np
import onnx

PLAN_MAGIC = b"FAKEPLAN1\n"


# ---------------------------------------------------------------------------- pycuda
def make_fake_pycuda() -> types.ModuleType:
    cuda = types.ModuleType("pycuda.driver")
    memory: dict[int, bytearray] = {}
    next_addr = itertools.count(0x1000, 0x100000)
    local = threading.local()
    stats = {"pushes": 0, "pops": 0, "allocs": 0, "frees": 0}

    class Error(Exception):
        pass

    def require_context():
        if getattr(local, "depth", 0) <= 0:
            raise Error("no CUDA context is current on this thread")

    class DeviceAllocation:
        def __init__(self, size: int) -> None:
            require_context()
            self.addr = next(next_addr)
            memory[self.addr] = bytearray(size)
            stats["allocs"] += 1

        def __int__(self) -> int:
            return self.addr

        def free(self) -> None:
            require_context()
            memory.pop(self.addr, None)
            stats["frees"] += 1

    class Context:
        def push(self) -> None:
            local.depth = getattr(local, "depth", 0) + 1
            stats["pushes"] += 1

        @staticmethod
        def pop() -> None:
            if getattr(local, "depth", 0) <= 0:
                raise Error("pop without push")
            local.depth -= 1
            stats["pops"] += 1

        def detach(self) -> None:
            pass

    class device_attribute:  # noqa: N801 - pycuda's name
        MULTIPROCESSOR_COUNT = "MULTIPROCESSOR_COUNT"

    class Device:
        @staticmethod
        def count() -> int:
            return 1

        def __init__(self, index: int) -> None:
            self.index = index

        def name(self) -> str:
            return "Orin"

        def compute_capability(self) -> tuple[int, int]:
            return (8, 7)

        def get_attribute(self, attr) -> int:
            assert attr == device_attribute.MULTIPROCESSOR_COUNT
            return 16

        def total_memory(self) -> int:
            return 64 << 30

        def retain_primary_context(self) -> Context:
            return Context()

    class Stream:
        def __init__(self) -> None:
            require_context()
            self.handle = 42

        def synchronize(self) -> None:
            require_context()

    def _write(dst, src: np.ndarray) -> None:
        require_context()
        data = np.ascontiguousarray(src).tobytes()
        memory[int(dst)][: len(data)] = data

    def memcpy_htod(dst, src):
        _write(dst, src)

    def memcpy_htod_async(dst, src, stream=None):
        _write(dst, src)

    def memcpy_dtoh_async(dst: np.ndarray, src, stream=None):
        require_context()
        raw = memory[int(src)][: dst.nbytes]
        dst[...] = np.frombuffer(bytes(raw), dtype=dst.dtype).reshape(dst.shape)

    def pagelocked_empty(shape, dtype):
        return np.empty(shape, dtype)

    cuda.Error = Error
    cuda.Device = Device
    cuda.Context = Context
    cuda.Stream = Stream
    cuda.device_attribute = device_attribute
    cuda.init = lambda: None
    cuda.get_driver_version = lambda: 12060
    cuda.mem_alloc = DeviceAllocation
    cuda.memcpy_htod = memcpy_htod
    cuda.memcpy_htod_async = memcpy_htod_async
    cuda.memcpy_dtoh_async = memcpy_dtoh_async
    cuda.pagelocked_empty = pagelocked_empty
    cuda.memory = memory
    cuda.stats = stats
    cuda.require_context = require_context
    return cuda


# ---------------------------------------------------------------------------- tensorrt
def make_fake_tensorrt(version: str, cuda: types.ModuleType) -> types.ModuleType:
    v = tuple(int(x) for x in version.split(".")[:2])
    pre10, pre11 = v < (10, 0), v < (11, 0)
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    log: list[str] = []
    trt.calls = log

    class Logger:
        ERROR, WARNING, INFO, VERBOSE = 1, 2, 3, 4

        def __init__(self, severity=2) -> None:
            self.severity = severity

    flags = {"STRONGLY_TYPED": 1} if not pre10 else {}
    if pre11:
        flags["EXPLICIT_BATCH"] = 0
    trt.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", flags)
    trt.MemoryPoolType = enum.IntEnum("MemoryPoolType", {"WORKSPACE": 0})
    trt.ProfilingVerbosity = enum.IntEnum("ProfilingVerbosity", {"DETAILED": 2})
    trt.TensorIOMode = enum.IntEnum("TensorIOMode", {"INPUT": 1, "OUTPUT": 2})
    trt.DataType = enum.IntEnum("DataType", {"FLOAT": 0, "HALF": 1})
    trt.LayerInformationFormat = enum.IntEnum("LayerInformationFormat", {"ONELINE": 0, "JSON": 1})
    builder_flags = {"STRICT_NANS": 20}
    if pre11:
        builder_flags.update({"FP16": 0, "INT8": 1})
    trt.BuilderFlag = enum.IntEnum("BuilderFlag", builder_flags)
    trt.nptype = lambda dt: np.float32 if dt == trt.DataType.FLOAT else np.float16

    class Tensor:
        def __init__(self, name, shape, dtype):
            self.name, self.shape, self.dtype = name, shape, dtype

    class Network:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.model: onnx.ModelProto | None = None

        @property
        def num_inputs(self):
            return len(self.model.graph.input)

        @property
        def num_outputs(self):
            return len(self.model.graph.output)

        def get_input(self, i):
            vi = self.model.graph.input[i]
            dims = [d.dim_value or -1 for d in vi.type.tensor_type.shape.dim]
            return Tensor(vi.name, tuple(dims), trt.DataType.FLOAT)

        def get_output(self, i):
            return Tensor(self.model.graph.output[i].name, (), trt.DataType.FLOAT)

    class OnnxParser:
        def __init__(self, network, logger) -> None:
            self.network, self.errors = network, []

        def parse_from_file(self, path: str) -> bool:
            model = onnx.load(path)
            opset = max(i.version for i in model.opset_import if i.domain in ("", "ai.onnx"))
            if opset > 17 and v < (8, 6):
                self.errors.append("unsupported opset")
                return False
            self.network.model = model
            return True

        @property
        def num_errors(self):
            return len(self.errors)

        def get_error(self, i):
            return self.errors[i]

    class Profile:
        def __init__(self) -> None:
            self.shapes = {}

        def set_shape(self, name, mn, opt, mx):
            self.shapes[name] = (tuple(mn), tuple(opt), tuple(mx))

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self.data = data or b""

        def serialize(self):
            return self.data + b"+timing"

    config_attrs: dict = {}

    class Config:
        def __init__(self) -> None:
            self.flags_set, self.profiles = [], []
            self.profiling_verbosity = None
            self.timing_cache = None
            self._monitor = None
            self._calibrator = None
            self.calibration_profile = None

        def set_memory_pool_limit(self, pool, size):
            assert pool == trt.MemoryPoolType.WORKSPACE and size > 0

        def set_flag(self, flag):
            self.flags_set.append(flag)

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, data):
            return TimingCache(bytes(data))

        def set_timing_cache(self, cache, ignore_mismatch):
            self.timing_cache = cache
            return True

        def get_timing_cache(self):
            return self.timing_cache

    if pre11:

        def _get_cal(self):
            return self._calibrator

        def _set_cal(self, c):
            self._calibrator = c

        Config.int8_calibrator = property(_get_cal, _set_cal)

        def set_calibration_profile(self, profile):
            self.calibration_profile = profile

        Config.set_calibration_profile = set_calibration_profile
    if not pre10:

        def _get_mon(self):
            return self._monitor

        def _set_mon(self, m):
            self._monitor = m

        Config.progress_monitor = property(_get_mon, _set_mon)
    del config_attrs

    class Builder:
        def __init__(self, logger) -> None:
            self.logger = logger

        def create_network(self, flags):
            if not pre11:
                assert flags & (1 << trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
            return Network(flags)

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            cuda.require_context()
            if config._monitor is not None:
                config._monitor.phase_start("Building engine", None, 2)
                config._monitor.step_complete("Building engine", 0)
                config._monitor.phase_finish("Building engine")
            cal = config._calibrator
            if cal is not None:
                cache = cal.read_calibration_cache()
                if not cache:
                    n = 0
                    while (ptrs := cal.get_batch(["image"])) is not None:
                        assert int(ptrs[0]) in cuda.memory
                        n += 1
                    assert n > 0, "calibrator gave no batch"
                    cal.write_calibration_cache(
                        b"TRT-100300-EntropyCalibration2\nimage: 3c010a14\n"
                    )
            ((name, (_, _, mx)),) = config.profiles[0].shapes.items()
            meta = {
                "flags": [int(f) for f in config.flags_set],
                "max_batch": mx[0],
                "strongly_typed": bool(network.flags & 2),
            }
            log.append(json.dumps(meta))
            return (
                PLAN_MAGIC + json.dumps(meta).encode() + b"\n" + network.model.SerializeToString()
            )

    class Engine:
        def __init__(self, meta: dict, model_bytes: bytes) -> None:
            import onnxruntime as ort

            self.meta = meta
            self.model = onnx.load_from_string(model_bytes)
            self.session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
            self.inputs = [i.name for i in self.session.get_inputs()]
            self.outputs = [o.name for o in self.session.get_outputs()]
            self.num_layers = len(self.model.graph.node)
            #: The network's input shape after the batch axis, as the real engine reports it.
            self.sample_shape = tuple(int(d) for d in self.session.get_inputs()[0].shape[1:])

        @property
        def num_io_tensors(self):
            return len(self.inputs) + len(self.outputs)

        def get_tensor_name(self, i):
            return (self.inputs + self.outputs)[i]

        def get_tensor_mode(self, name):
            return trt.TensorIOMode.INPUT if name in self.inputs else trt.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name):
            return trt.DataType.FLOAT

        def get_tensor_shape(self, name):
            return (-1, *self.sample_shape)

        def get_tensor_profile_shape(self, name, profile):
            mx = self.meta["max_batch"]
            return [(1, *self.sample_shape), (2, *self.sample_shape), (mx, *self.sample_shape)]

        def create_execution_context(self):
            return ExecutionContext(self)

        def create_engine_inspector(self):
            return Inspector(self)

    class ExecutionContext:
        def __init__(self, engine) -> None:
            self.engine = engine
            self.shapes: dict[str, tuple] = {}
            self.addresses: dict[str, int] = {}

        def set_input_shape(self, name, shape):
            assert shape[0] <= self.engine.meta["max_batch"], "batch beyond the profile"
            self.shapes[name] = tuple(shape)
            n = shape[0]
            for out in self.engine.session.get_outputs():
                self.shapes[out.name] = (n, *out.shape[1:])
            return True

        def get_tensor_shape(self, name):
            return self.shapes[name]

        def set_tensor_address(self, name, addr):
            self.addresses[name] = int(addr)
            return True

        def execute_async_v3(self, stream_handle):
            cuda.require_context()
            name = self.engine.inputs[0]
            shape = self.shapes[name]
            count = int(np.prod(shape))
            raw = bytes(cuda.memory[self.addresses[name]][: count * 4])
            x = np.frombuffer(raw, np.float32).reshape(shape)
            outs = self.engine.session.run(self.engine.outputs, {name: x})
            for oname, value in zip(self.engine.outputs, outs, strict=True):
                data = np.ascontiguousarray(value, np.float32).tobytes()
                cuda.memory[self.addresses[oname]][: len(data)] = data
            return True

    class Inspector:
        def __init__(self, engine) -> None:
            self.engine = engine

        def get_engine_information(self, fmt):
            assert fmt == trt.LayerInformationFormat.JSON
            layers = [
                {
                    "Name": n.name or n.op_type,
                    "LayerType": n.op_type,
                    "Outputs": [{"Format/Datatype": "Half"}],
                }
                for n in self.engine.model.graph.node
            ]
            return json.dumps({"Layers": layers})

    class Runtime:
        def __init__(self, logger) -> None:
            pass

        def deserialize_cuda_engine(self, plan: bytes):
            cuda.require_context()
            if not plan.startswith(PLAN_MAGIC):
                return None
            header, model = plan[len(PLAN_MAGIC) :].split(b"\n", 1)
            return Engine(json.loads(header), model)

    trt.Logger = Logger
    trt.Builder = Builder
    trt.OnnxParser = OnnxParser
    trt.Runtime = Runtime
    if pre11:

        class IInt8EntropyCalibrator2:
            def __init__(self) -> None:
                pass

        trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    if not pre10:

        class IProgressMonitor:
            def __init__(self) -> None:
                pass

        trt.IProgressMonitor = IProgressMonitor
    return trt


def install(monkeypatch, version: str) -> tuple[types.ModuleType, types.ModuleType]:
    """Put the fakes in ``sys.modules`` as ``tensorrt``, ``pycuda`` and ``pycuda.driver``."""
    import importlib.machinery
    import sys

    cuda = make_fake_pycuda()
    trt = make_fake_tensorrt(version, cuda)
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)  # find_spec() works
    pkg = types.ModuleType("pycuda")
    pkg.driver = cuda
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "pycuda", pkg)
    monkeypatch.setitem(sys.modules, "pycuda.driver", cuda)
    return trt, cuda


def plan_flags(plan: Path) -> dict:
    header = plan.read_bytes()[len(PLAN_MAGIC) :].split(b"\n", 1)[0]
    return json.loads(header)
