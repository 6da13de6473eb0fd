"""A thin, version-aware layer over the ``tensorrt`` module: every builder-side TensorRT call lives here.

TensorRT's Python API changed under our feet twice: 10.0 removed the bindings API
(``execute_async_v2``, ``build_engine``, ``max_workspace_size``...) and 11.0 removed weak typing
(``BuilderFlag.FP16/INT8``, ``IInt8EntropyCalibrator2``). This module branches on the running
version through :class:`Capabilities`, and :data:`API_USES` lists every TensorRT name our code
touches (here and in :mod:`gapcam.backends.tensorrt_backend`) with the versions whose code path
uses it. ``tests/engine_builder/test_trt_api_static.py`` checks that table against the names
extracted from NVIDIA's real bindings wheels (``engine_builder/data/trt_api_names.json``) and that
the code uses no TensorRT name missing from the table.

Convention the static test relies on: TensorRT objects are held in variables named as in
:data:`TRT_OBJECT_NAMES` (``builder``, ``network``, ``config``...), and the module is ``trt``.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine_builder.errors import EngineBuilderError, TensorRTUnavailableError

Version = tuple[int, ...]

#: Oldest TensorRT with name-based IO (``set_tensor_address``/``execute_async_v3``): JetPack 5.1.
MIN_SUPPORTED: Version = (8, 5)
#: First major version we have not checked the API of.
FIRST_UNCHECKED: Version = (12, 0)


@dataclass(frozen=True)
class VersionRange:
    """Half-open range ``[since, until)`` of TensorRT versions (``until=None``: no end)."""

    since: Version = MIN_SUPPORTED
    until: Version | None = None

    def contains(self, version: Version) -> bool:
        v = tuple(version[:2])
        return v >= self.since[:2] and (self.until is None or v < self.until[:2])


ALL = VersionRange()
BEFORE_10 = VersionRange(until=(10, 0))
BEFORE_11 = VersionRange(until=(11, 0))
FROM_10 = VersionRange(since=(10, 0))
FROM_11 = VersionRange(since=(11, 0))

#: Every TensorRT name used by engine_builder/trt_api.py and gapcam/backends/tensorrt_backend.py,
#: as ``Class.member`` (or a module attribute), with the versions whose code path uses it.
API_USES: dict[str, VersionRange] = {
    "__version__": ALL,
    "nptype": ALL,
    "Logger": ALL,
    "Logger.ERROR": ALL,
    "Logger.WARNING": ALL,
    "Logger.INFO": ALL,
    "Logger.VERBOSE": ALL,
    "Builder": ALL,
    "Builder.create_network": ALL,
    "Builder.create_builder_config": ALL,
    "Builder.create_optimization_profile": ALL,
    "Builder.build_serialized_network": ALL,
    "NetworkDefinitionCreationFlag.EXPLICIT_BATCH": BEFORE_10,
    "NetworkDefinitionCreationFlag.STRONGLY_TYPED": FROM_11,
    "INetworkDefinition.num_inputs": ALL,
    "INetworkDefinition.num_outputs": ALL,
    "INetworkDefinition.get_input": ALL,
    "INetworkDefinition.get_output": ALL,
    "ITensor.name": ALL,
    "ITensor.shape": ALL,
    "ITensor.dtype": ALL,
    "OnnxParser": ALL,
    "OnnxParser.parse_from_file": ALL,
    "OnnxParser.num_errors": ALL,
    "OnnxParser.get_error": ALL,
    "IBuilderConfig.set_memory_pool_limit": ALL,
    "MemoryPoolType.WORKSPACE": ALL,
    "IBuilderConfig.profiling_verbosity": ALL,
    "ProfilingVerbosity.DETAILED": ALL,
    "IBuilderConfig.set_flag": BEFORE_11,
    "BuilderFlag.FP16": BEFORE_11,
    "BuilderFlag.INT8": BEFORE_11,
    "IBuilderConfig.add_optimization_profile": ALL,
    "IOptimizationProfile.set_shape": ALL,
    "IBuilderConfig.int8_calibrator": BEFORE_11,
    "IBuilderConfig.set_calibration_profile": BEFORE_11,
    "IInt8EntropyCalibrator2": BEFORE_11,
    "IInt8EntropyCalibrator2.get_batch_size": BEFORE_11,
    "IInt8EntropyCalibrator2.get_batch": BEFORE_11,
    "IInt8EntropyCalibrator2.read_calibration_cache": BEFORE_11,
    "IInt8EntropyCalibrator2.write_calibration_cache": BEFORE_11,
    "IBuilderConfig.create_timing_cache": ALL,
    "IBuilderConfig.set_timing_cache": ALL,
    "IBuilderConfig.get_timing_cache": ALL,
    "ITimingCache.serialize": ALL,
    "IProgressMonitor": FROM_10,
    "IProgressMonitor.phase_start": FROM_10,
    "IProgressMonitor.step_complete": FROM_10,
    "IProgressMonitor.phase_finish": FROM_10,
    "IBuilderConfig.progress_monitor": FROM_10,
    "Runtime": ALL,
    "Runtime.deserialize_cuda_engine": ALL,
    "ICudaEngine.num_io_tensors": ALL,
    "ICudaEngine.num_layers": ALL,
    "ICudaEngine.get_tensor_name": ALL,
    "ICudaEngine.get_tensor_mode": ALL,
    "ICudaEngine.get_tensor_dtype": ALL,
    "ICudaEngine.get_tensor_shape": ALL,
    "ICudaEngine.get_tensor_profile_shape": ALL,
    "ICudaEngine.create_execution_context": ALL,
    "ICudaEngine.create_engine_inspector": ALL,
    "TensorIOMode.INPUT": ALL,
    "IExecutionContext.set_input_shape": ALL,
    "IExecutionContext.set_tensor_address": ALL,
    "IExecutionContext.get_tensor_shape": ALL,
    "IExecutionContext.execute_async_v3": ALL,
    "EngineInspector.get_engine_information": ALL,
    "LayerInformationFormat.JSON": ALL,
}

#: Names we branch around because they are gone from a version on (checked against the wheels):
#: using one of them outside its range is a bug the static test must catch.
REMOVED_IN: dict[str, Version] = {
    "execute_async_v2": (10, 0),
    "build_engine": (10, 0),
    "max_workspace_size": (10, 0),
    "num_bindings": (10, 0),
    "IInt8EntropyCalibrator2": (11, 0),
    "int8_calibrator": (11, 0),
    "set_calibration_profile": (11, 0),
    "EXPLICIT_BATCH": (11, 0),
    "FP16": (11, 0),
    "platform_has_fast_fp16": (11, 0),
}

#: Variable names that hold TensorRT objects in the TensorRT-facing modules (see module doc).
TRT_OBJECT_NAMES = frozenset(
    {
        "trt",
        "builder",
        "network",
        "parser",
        "config",
        "profile",
        "calib_profile",
        "runtime",
        "engine",
        "context",
        "inspector",
        "timing_cache",
        "tensor",
        "_engine",
        "_context",
        "_runtime",
    }
)

NAMES_FILE = Path(__file__).resolve().parent / "data" / "trt_api_names.json"


def parse_version(text: str) -> Version:
    """``"10.3.0.30"`` -> ``(10, 3, 0, 30)``; non-numeric suffixes are ignored."""
    parts: list[int] = []
    for piece in str(text).split("."):
        digits = re.match(r"\d*", piece).group()
        if not digits:
            break
        parts.append(int(digits))
        if digits != piece:  # "2-1+cuda11" ends the version
            break
    if not parts:
        raise EngineBuilderError(f"cannot parse TensorRT version {text!r}")
    return tuple(parts)


def calibration_cache_version_code(version: Version) -> int:
    """``NV_TENSORRT_VERSION`` as written in calibration cache headers (8.6.1 -> 8601, 10.3.0 -> 100300)."""
    major, minor, patch = (tuple(version) + (0, 0, 0))[:3]
    if major >= 10:
        return major * 10000 + minor * 100 + patch
    return major * 1000 + minor * 100 + patch


@dataclass(frozen=True)
class Capabilities:
    """What the running TensorRT version offers, decided from its version number alone."""

    version: Version

    @property
    def precision_flags(self) -> bool:
        """``BuilderFlag.FP16/INT8`` (weak typing); deprecated in 10.12, removed in 11."""
        return self.version[:2] < (11, 0)

    @property
    def entropy_calibrator(self) -> bool:
        """``IInt8EntropyCalibrator2`` (implicit quantisation); removed in 11."""
        return self.version[:2] < (11, 0)

    @property
    def explicit_batch_flag(self) -> bool:
        """Networks must be created with ``EXPLICIT_BATCH`` before 10 (always explicit after)."""
        return self.version[:2] < (10, 0)

    @property
    def strongly_typed(self) -> bool:
        """11 builds only strongly typed networks: precision comes from the ONNX graph."""
        return self.version[:2] >= (11, 0)

    @property
    def progress_monitor(self) -> bool:
        """``IProgressMonitor`` exists from 10.0."""
        return self.version[:2] >= (10, 0)

    def uses(self, name: str) -> bool:
        """True when this version's code path uses TensorRT name ``name`` (from :data:`API_USES`)."""
        return API_USES[name].contains(self.version)


def load_extracted_names() -> dict[str, Any]:
    """The committed API surface per TensorRT line (see tools/extract_trt_api.py)."""
    return json.loads(NAMES_FILE.read_text())


def names_for(data: dict[str, Any], line: str) -> set[str]:
    return set(data["common"]) | {n for n, vs in data["partial"].items() if line in vs}


def name_exists(names: set[str], name: str) -> bool:
    """A name exists when a string of the binary is it or ends with it (the linker merges tails)."""
    return name in names or any(n.endswith(name) for n in names)


# ---------------------------------------------------------------------------- importing
def import_tensorrt():
    """The ``tensorrt`` module, or a one-line error saying where it comes from."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise TensorRTUnavailableError(
            f"TensorRT is not available here ({exc}); build engines on the Jetson that will run "
            "them (JetPack ships TensorRT: `sudo apt install python3-libnvinfer`), CPU-only "
            "commands (quantize, calib, inspect of metadata, verify of ONNX) work anywhere"
        ) from exc
    return trt


def capabilities(trt) -> Capabilities:
    version = parse_version(trt.__version__)
    if version[:2] < MIN_SUPPORTED:
        raise EngineBuilderError(
            f"TensorRT {trt.__version__} is too old: engine-builder needs 8.5 or newer "
            "(JetPack 5.1+), for name-based IO (execute_async_v3)"
        )
    if version[:2] >= FIRST_UNCHECKED:
        print(
            f"warning: TensorRT {trt.__version__} is newer than the API checked by this "
            "version of engine-builder (8.5 - 11.x); proceeding",
            file=sys.stderr,
        )
    return Capabilities(version)


def make_logger(trt, verbose: bool = False):
    return trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)


# ---------------------------------------------------------------------------- network
@dataclass
class ParsedNetwork:
    builder: Any
    network: Any
    parser: Any
    inputs: list[tuple[str, tuple[int, ...]]]
    outputs: list[str]


def parse_onnx(trt, logger, onnx_path: Path, caps: Capabilities) -> ParsedNetwork:
    """Create a builder and a network and parse the ONNX file into it (errors as one line)."""
    builder = trt.Builder(logger)
    flags = 0
    if caps.explicit_batch_flag:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if caps.strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        first = errors[0].splitlines()[0] if errors else "unknown error"
        raise EngineBuilderError(
            f"{onnx_path}: TensorRT {trt.__version__} cannot parse this ONNX "
            f"({len(errors)} error(s), first: {first}); check the opset (<= 17 for TensorRT 8.5) "
            "and the Q/DQ rules with `engine-builder quantize --check-only`"
        )
    inputs = []
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        inputs.append((tensor.name, tuple(tensor.shape)))
    outputs = [network.get_output(i).name for i in range(network.num_outputs)]
    return ParsedNetwork(builder, network, parser, inputs, outputs)


# ---------------------------------------------------------------------------- builder config
@dataclass
class BuildSettings:
    """Everything that decides how the engine is built (recorded in the .plan.json)."""

    precision: str  #: fp32 | fp16 | int8
    int8_source: str | None  #: qdq | calibrator | None
    min_batch: int = 1
    opt_batch: int = 2
    max_batch: int = 4
    workspace_mb: int = 1024
    calibration_batch: int = 8

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def static_profile_batch(input_shape: tuple[int, ...]) -> int | None:
    """The batch of a parsed input whose first dimension is fixed (``-1``: dynamic)."""
    first = int(input_shape[0]) if input_shape else -1
    return first if first > 0 else None


def make_config(
    trt,
    parsed: ParsedNetwork,
    caps: Capabilities,
    settings: BuildSettings,
    *,
    timing_cache_data: bytes | None,
    calibrator: Any = None,
    progress: Any = None,
):
    """Builder config: workspace, precision (by version), profile, calibrator, timing cache."""
    builder = parsed.builder
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mb << 20)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if caps.precision_flags:
        if settings.precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)  # int8 engines keep fp16 for unquantised layers
        if settings.precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
    # Strongly typed (11+): precision is in the graph (fp16 casts, Q/DQ), see build.prepare_onnx.
    (input_name, input_shape), *_ = parsed.inputs
    chw = tuple(input_shape[1:])
    fixed = static_profile_batch(input_shape)
    if fixed is not None:  # a static-batch graph (PyTorch's default export) has one shape
        settings.min_batch = settings.opt_batch = settings.max_batch = fixed
        settings.calibration_batch = fixed
    profile = builder.create_optimization_profile()
    profile.set_shape(
        input_name,
        (settings.min_batch, *chw),
        (settings.opt_batch, *chw),
        (settings.max_batch, *chw),
    )
    config.add_optimization_profile(profile)
    if calibrator is not None:
        if not caps.entropy_calibrator:
            raise EngineBuilderError(
                f"TensorRT {trt.__version__} has no IInt8EntropyCalibrator2 (removed in 11); "
                "quantise to Q/DQ with `engine-builder quantize` and build that model"
            )
        calib_profile = builder.create_optimization_profile()
        shape = (settings.calibration_batch, *chw)
        calib_profile.set_shape(input_name, shape, shape, shape)
        config.int8_calibrator = calibrator
        config.set_calibration_profile(calib_profile)
    timing_cache = config.create_timing_cache(timing_cache_data or b"")
    config.set_timing_cache(timing_cache, False)
    if progress is not None and caps.progress_monitor:
        config.progress_monitor = progress
    return config


def build_serialized(trt, parsed: ParsedNetwork, config, onnx_path: Path) -> bytes:
    plan = parsed.builder.build_serialized_network(parsed.network, config)
    if plan is None:
        raise EngineBuilderError(
            f"{onnx_path}: TensorRT {trt.__version__} failed to build the engine (see the "
            "messages above; rerun with --verbose for the builder log)"
        )
    return bytes(plan)


def serialized_timing_cache(config) -> bytes:
    timing_cache = config.get_timing_cache()
    return bytes(timing_cache.serialize()) if timing_cache is not None else b""


# ---------------------------------------------------------------------------- progress
def make_progress_monitor(trt, caps: Capabilities, say: Callable[[str], None]):
    """Build progress for TensorRT >= 10 (``IProgressMonitor``); ``None`` before (see Heartbeat)."""
    if not caps.progress_monitor:
        return None

    class ProgressMonitor(trt.IProgressMonitor):
        """Prints each top-level build phase with its step count, so minutes of build show life."""

        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._steps: dict[str, int] = {}
            self._depth: dict[str, int] = {}
            self._started = time.monotonic()

        def phase_start(self, phase_name, parent_phase, num_steps):
            depth = 0 if parent_phase is None else self._depth.get(parent_phase, 0) + 1
            self._depth[phase_name] = depth
            self._steps[phase_name] = num_steps
            if depth <= 1:
                say(
                    f"{'  ' * depth}[{time.monotonic() - self._started:6.1f}s] {phase_name} ({num_steps} steps)"
                )

        def step_complete(self, phase_name, step):
            return True  # never cancel

        def phase_finish(self, phase_name):
            if self._depth.get(phase_name, 9) == 0:
                say(f"[{time.monotonic() - self._started:6.1f}s] {phase_name} done")

    return ProgressMonitor()


class Heartbeat:
    """Prints the elapsed build time every ``period`` seconds (TensorRT 8.x has no progress API)."""

    def __init__(self, say: Callable[[str], None], what: str, period: float = 15.0) -> None:
        self._say, self._what, self._period = say, what, period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self._say(f"  ... {self._what}: {time.monotonic() - self._started:.0f}s elapsed")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------------------- INT8 calibrator
def make_entropy_calibrator(
    trt,
    caps: Capabilities,
    batches: Callable[[], Iterator[np.ndarray]],
    cache_path: Path,
    cuda,
):
    """``IInt8EntropyCalibrator2`` fed from preprocessed batches; its cache file is trtexec's.

    When ``cache_path`` exists TensorRT takes the scales from it and never asks for a batch, so
    a cache computed elsewhere (e.g. by ``engine-builder calib cache`` on a PC) builds offline.
    ``cuda`` is ``pycuda.driver``; the caller has the primary context current.
    """
    if not caps.entropy_calibrator:
        raise EngineBuilderError(
            f"TensorRT {trt.__version__} removed IInt8EntropyCalibrator2 (strongly typed); use "
            "the Q/DQ path: `engine-builder quantize MODEL.onnx --calib SET --out MODEL.int8.qdq.onnx` "
            "then `engine-builder build MODEL.int8.qdq.onnx --precision int8`"
        )

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._iter: Iterator[np.ndarray] | None = None
            self._device = None
            self._nbytes = 0
            self.batches_used = 0

        def get_batch_size(self):
            return 1  # explicit-batch network: the batch is in the calibration profile's shape

        def get_batch(self, names):
            if self._iter is None:
                self._iter = iter(batches())
            batch = next(self._iter, None)
            if batch is None:
                return None
            batch = np.ascontiguousarray(batch, dtype=np.float32)
            if self._device is None or batch.nbytes > self._nbytes:
                self._device = cuda.mem_alloc(batch.nbytes)
                self._nbytes = batch.nbytes
            cuda.memcpy_htod(self._device, batch)
            self.batches_used += 1
            return [int(self._device)]

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache):
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            cache_path.write_bytes(bytes(cache))

        def _free(self) -> None:
            """Release the batch buffer while the CUDA context is still current."""
            if self._device is not None:
                self._device.free()
                self._device = None

    return EntropyCalibrator()


# ---------------------------------------------------------------------------- inspection
def engine_layers(trt, plan: bytes, logger) -> list[dict[str, Any]]:
    """Per-layer information from the engine inspector (name, type, precision where reported)."""
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise EngineBuilderError("TensorRT could not deserialise the engine for inspection")
    inspector = engine.create_engine_inspector()
    info = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    layers = []
    for layer in info.get("Layers", []):
        if isinstance(layer, str):  # profiling verbosity below DETAILED: names only
            layers.append({"name": layer})
            continue
        outputs = layer.get("Outputs") or []
        layers.append(
            {
                "name": layer.get("Name", "?"),
                "type": layer.get("LayerType", "?"),
                "precision": ",".join(sorted({str(o.get("Format/Datatype", "?")) for o in outputs}))
                or "?",
                "tactic": layer.get("TacticName") or layer.get("TacticValue", ""),
            }
        )
    return layers
