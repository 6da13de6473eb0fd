"""TensorRT backend (Jetson): runs a serialized engine (``.plan``) built by ``engine-builder``.

A plan runs only on the GPU model and the exact TensorRT version it was built with, so every plan
has a ``.plan.json`` beside it (written by ``engine_builder.metadata``) and loading refuses a
mismatch with one line that says how to rebuild, instead of TensorRT's deserialisation error or,
worse, an engine that runs with another model card.

CUDA is driven with pycuda through the device's *primary* context, pushed and popped around
every call: a ROS 2 executor calls ``infer`` from worker threads that never created a context,
and ``pycuda.autoinit`` would bind one to the importing thread only. One lock serialises callers,
since the execution context, the stream and the page-locked buffers are shared. Inputs and
outputs are bound by tensor name (``set_tensor_address`` / ``execute_async_v3``, TensorRT 8.5+),
and the batch is set per call with ``set_input_shape`` within the engine's optimisation profile.

``tensorrt`` and ``pycuda`` are imported inside the functions that need them, so this module (and
its metadata checks, which ``engine_builder`` reuses) imports on any machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gapcam.backends.base import Backend, InferenceOutput
from gapcam.errors import GapcamError, ModelContractError
from gapcam.model_card import ModelCard, expected_input_shape

#: Identifies the metadata layout; bump when a key this module reads changes meaning.
PLAN_METADATA_SCHEMA = "gapcam-plan/1"
L4T_RELEASE_FILE = Path("/etc/nv_tegra_release")

#: L4T major.minor -> JetPack release (the JetPack/TensorRT matrix of the README).
_JETPACK_BY_L4T = {
    (35, 1): "5.0.2",
    (35, 2): "5.1",
    (35, 3): "5.1.1",
    (35, 4): "5.1.2",
    (35, 5): "5.1.3",
    (35, 6): "5.1.4",
    (36, 2): "6.0 DP",
    (36, 3): "6.0",
    (36, 4): "6.1/6.2",
    (38, 2): "7.0",
}


# ---------------------------------------------------------------------------- metadata (no GPU)
def metadata_path_for(plan_path: str | Path) -> Path:
    """``x.plan`` -> ``x.plan.json``."""
    p = Path(plan_path)
    return p.with_name(p.name + ".json")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_plan_metadata(plan_path: str | Path) -> dict[str, Any]:
    """Read the ``.plan.json`` of a plan; a plan without one is refused (provenance unknown)."""
    meta_path = metadata_path_for(plan_path)
    if not meta_path.is_file():
        raise GapcamError(
            f"{meta_path}: engine metadata not found; engines must be built with "
            "`engine-builder build` (it writes the .plan.json beside the .plan)"
        )
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GapcamError(f"{meta_path}: engine metadata is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("schema") != PLAN_METADATA_SCHEMA:
        raise GapcamError(
            f"{meta_path}: engine metadata schema {meta.get('schema') if isinstance(meta, dict) else None!r} "
            f"is not {PLAN_METADATA_SCHEMA!r}; rebuild the engine with this version of engine-builder"
        )
    return meta


def read_l4t_release(path: str | Path = L4T_RELEASE_FILE) -> str | None:
    """L4T version from ``/etc/nv_tegra_release`` (``# R36 (release), REVISION: 4.0`` -> 36.4.0)."""
    p = Path(path)
    if not p.is_file():
        return None
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", p.read_text(errors="replace"))
    return f"{m.group(1)}.{m.group(2)}" if m else None


def jetpack_for_l4t(l4t: str | None) -> str | None:
    """JetPack release of an L4T version, where known."""
    if not l4t:
        return None
    parts = [int(x) for x in re.findall(r"\d+", l4t)[:2]]
    if len(parts) < 2:
        return None
    if parts[0] == 38:
        return "7.x"
    return _JETPACK_BY_L4T.get((parts[0], parts[1]))


@dataclass(frozen=True)
class RuntimeInfo:
    """What a plan's compatibility depends on, as found on the running machine."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str  #: "8.7"
    multiprocessors: int
    total_memory_mb: int = 0
    cuda_driver: str = ""
    l4t: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tensorrt": {"version": self.tensorrt_version},
            "gpu": {
                "name": self.gpu_name,
                "compute_capability": self.compute_capability,
                "multiprocessors": self.multiprocessors,
                "total_memory_mb": self.total_memory_mb,
            },
            "cuda": {"driver": self.cuda_driver},
            "platform": {"l4t": self.l4t, "jetpack": jetpack_for_l4t(self.l4t)},
        }


def rebuild_command(meta: dict[str, Any]) -> str:
    """The command that rebuilds this engine on the current device (from the recorded build)."""
    cmd = (meta.get("build") or {}).get("command")
    if cmd:
        return cmd
    onnx = (meta.get("onnx") or {}).get("path", "MODEL.onnx")
    return f"engine-builder build {onnx} --precision {meta.get('precision', 'fp16')} --out DIR"


def plan_problems(
    meta: dict[str, Any],
    here: RuntimeInfo | None = None,
    card: ModelCard | None = None,
    plan_sha256: str | None = None,
) -> list[str]:
    """Why this plan must not run here (empty when it may); each reason is short and specific.

    ``here`` is the running TensorRT/GPU, ``card`` the model card the caller expects,
    ``plan_sha256`` the hash of the plan file actually on disk.
    """
    problems: list[str] = []
    if meta.get("schema") != PLAN_METADATA_SCHEMA:
        problems.append(f"metadata schema {meta.get('schema')!r} is not {PLAN_METADATA_SCHEMA!r}")
        return problems
    if plan_sha256 is not None and meta.get("plan_sha256") != plan_sha256:
        problems.append(
            "the .plan file is not the one its .plan.json describes "
            f"(sha256 {plan_sha256[:12]} vs {str(meta.get('plan_sha256'))[:12]})"
        )
    if here is not None:
        built_trt = (meta.get("tensorrt") or {}).get("version")
        if built_trt != here.tensorrt_version:
            problems.append(
                f"built with TensorRT {built_trt}, this machine runs {here.tensorrt_version}"
            )
        gpu = meta.get("gpu") or {}
        if gpu.get("compute_capability") != here.compute_capability:
            problems.append(
                f"built for compute capability {gpu.get('compute_capability')} "
                f"({gpu.get('name')}), this GPU is {here.compute_capability} ({here.gpu_name})"
            )
        elif (gpu.get("name"), gpu.get("multiprocessors")) != (
            here.gpu_name,
            here.multiprocessors,
        ):
            problems.append(
                f"built on GPU {gpu.get('name')!r} with {gpu.get('multiprocessors')} SMs, "
                f"this is {here.gpu_name!r} with {here.multiprocessors} SMs"
            )
    if card is not None:
        onnx = meta.get("onnx") or {}
        known = {onnx.get("sha256"), (onnx.get("fp32_reference") or {}).get("sha256")} - {None}
        if card.onnx_sha256 and card.onnx_sha256 not in known:
            problems.append(
                f"built from ONNX {str(onnx.get('sha256'))[:12]}, the model card describes "
                f"{card.onnx_sha256[:12]}"
            )
        built_classes = tuple((meta.get("model_card") or {}).get("classes", ()))
        if built_classes and tuple(card.classes) != built_classes:
            problems.append(f"classes {list(built_classes)} != card {list(card.classes)}")
    return problems


def incompatibility_message(
    plan_path: str | Path, meta: dict[str, Any], problems: list[str]
) -> str:
    """One line: what is wrong with the plan and the exact command that fixes it."""
    return (
        f"{plan_path}: engine cannot run here ({'; '.join(problems)}); rebuild it on this "
        f"device: {rebuild_command(meta)}"
    )


# ---------------------------------------------------------------------------- CUDA (pycuda)
def _import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise GapcamError(
            f"TensorRT Python module cannot be imported ({exc}); on a Jetson install it with "
            "JetPack (python3-libnvinfer), or use the ONNX model with --backend onnxruntime"
        ) from exc
    return trt


def _import_pycuda():
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise GapcamError(
            f"pycuda cannot be imported ({exc}); install it on the Jetson with "
            "`pip install pycuda` (needs the CUDA toolkit headers, e.g. /usr/local/cuda)"
        ) from exc
    return cuda


class PrimaryContext:
    """The primary CUDA context of one device, entered around every GPU call from any thread."""

    def __init__(self, device_index: int = 0) -> None:
        cuda = _import_pycuda()
        try:
            cuda.init()
            if device_index >= cuda.Device.count():
                raise GapcamError(
                    f"CUDA device {device_index} does not exist ({cuda.Device.count()} found)"
                )
            self.device = cuda.Device(device_index)
            self.cuda_context = self.device.retain_primary_context()
        except cuda.Error as exc:
            raise GapcamError(f"no usable CUDA GPU ({exc}); TensorRT engines need one") from exc
        self._cuda = cuda
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Make the context current on this thread (and hold the lock) for the block."""
        with self._lock:
            self.cuda_context.push()
            try:
                yield
            finally:
                self._cuda.Context.pop()

    def release(self) -> None:
        with self._lock:
            self.cuda_context.detach()


def query_runtime_info(ctx: PrimaryContext) -> RuntimeInfo:
    """TensorRT version, GPU name, compute capability, SM count, CUDA driver and L4T of this host."""
    trt = _import_tensorrt()
    cuda = ctx._cuda
    dev = ctx.device
    major, minor = dev.compute_capability()
    driver = cuda.get_driver_version()  # e.g. 12060
    return RuntimeInfo(
        tensorrt_version=str(trt.__version__),
        gpu_name=str(dev.name()),
        compute_capability=f"{major}.{minor}",
        multiprocessors=int(dev.get_attribute(cuda.device_attribute.MULTIPROCESSOR_COUNT)),
        total_memory_mb=int(dev.total_memory()) // (1 << 20),
        cuda_driver=f"{driver // 1000}.{(driver % 1000) // 10}",
        l4t=read_l4t_release(),
    )


# ---------------------------------------------------------------------------- the backend
class TensorRTBackend(Backend):
    """Runs a TensorRT ``.plan`` built by engine-builder, after checking it belongs here."""

    name = "tensorrt"

    def __init__(
        self,
        plan_path: str | Path,
        card: ModelCard | None = None,
        *,
        device: int = 0,
        metadata: dict[str, Any] | None = None,
        verbose: bool = False,
    ) -> None:
        plan_path = Path(plan_path)
        if not plan_path.is_file():
            raise GapcamError(
                f"{plan_path}: engine not found; build it with "
                "`engine-builder build MODEL.onnx --precision fp16 --out DIR`"
            )
        meta = metadata if metadata is not None else load_plan_metadata(plan_path)
        plan = plan_path.read_bytes()
        trt = _import_tensorrt()
        ctx = PrimaryContext(device)
        try:
            runtime_info = query_runtime_info(ctx)
            problems = plan_problems(meta, runtime_info, card, sha256_bytes(plan))
            if problems:
                raise GapcamError(incompatibility_message(plan_path, meta, problems))
            try:
                engine_card = ModelCard.from_dict(meta["model_card"])
            except KeyError as exc:
                raise ModelContractError(f"{plan_path}: metadata has no model card") from exc
            super().__init__(_with_precision(engine_card, meta.get("precision", "fp32")))
            self.path = plan_path
            self.metadata = meta
            self.runtime_info = runtime_info
            self._ctx = ctx
            self._load(trt, plan, verbose)
        except BaseException:
            ctx.release()
            raise

    # -------------------------------------------------------------- setup
    def _load(self, trt, plan: bytes, verbose: bool) -> None:
        cuda = self._ctx._cuda
        self._cuda = cuda
        self._logger = trt.Logger(trt.Logger.INFO if verbose else trt.Logger.WARNING)
        with self._ctx.active():
            self._runtime = trt.Runtime(self._logger)
            engine = self._runtime.deserialize_cuda_engine(plan)
            if engine is None:
                raise GapcamError(
                    f"{self.path}: TensorRT could not deserialise the engine (corrupt file or "
                    f"built elsewhere); rebuild it: {rebuild_command(self.metadata)}"
                )
            self._engine = engine
            context = engine.create_execution_context()
            self._context = context
            self._inputs: list[str] = []
            self._outputs: list[str] = []
            for i in range(engine.num_io_tensors):
                tname = engine.get_tensor_name(i)
                if engine.get_tensor_mode(tname) == trt.TensorIOMode.INPUT:
                    self._inputs.append(tname)
                else:
                    self._outputs.append(tname)
            spec, out = self.card.input, self.card.output
            if self._inputs != [spec.name] or not {out.logits, out.cam} <= set(self._outputs):
                raise ModelContractError(
                    f"{self.path}: engine IO {self._inputs} -> {self._outputs} does not match "
                    f"its model card ({spec.name} -> {out.logits}, {out.cam}); rebuild it"
                )
            min_shape, _, max_shape = engine.get_tensor_profile_shape(spec.name, 0)
            self.max_batch = int(max_shape[0])
            #: > 1 only for an engine of a static-batch graph: smaller batches are padded.
            self.min_batch = int(min_shape[0])
            self._input_shape = tuple(expected_input_shape(spec)[1:])  # NCHW or NHWC
            self._dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in self._io}
            self._host: dict[str, np.ndarray] = {}
            self._device: dict[str, Any] = {}
            context.set_input_shape(spec.name, (self.max_batch, *self._input_shape))
            for tname in self._io:
                shape = tuple(context.get_tensor_shape(tname))
                count = int(np.prod(shape))
                self._host[tname] = cuda.pagelocked_empty(count, self._dtypes[tname])
                self._device[tname] = cuda.mem_alloc(max(1, self._host[tname].nbytes))
                context.set_tensor_address(tname, int(self._device[tname]))
            self._stream = cuda.Stream()

    @property
    def has_features(self) -> bool:
        return bool(self.card.output.features) and self.card.output.features in self._outputs

    @property
    def _io(self) -> list[str]:
        return self._inputs + self._outputs

    # -------------------------------------------------------------- inference
    def infer(self, batch: np.ndarray) -> InferenceOutput:
        batch = np.asarray(batch)
        if batch.ndim != 4 or tuple(batch.shape[1:]) != self._input_shape:
            raise GapcamError(
                f"input batch shape {batch.shape} does not match the engine (N, "
                f"{', '.join(map(str, self._input_shape))})"
            )
        if batch.shape[0] > self.max_batch:  # split into profile-sized chunks
            parts = [
                self.infer(batch[i : i + self.max_batch])
                for i in range(0, batch.shape[0], self.max_batch)
            ]
            feats = [p.features for p in parts]
            return InferenceOutput(
                logits=np.concatenate([p.logits for p in parts]),
                cam=np.concatenate([p.cam for p in parts]),
                features=None if feats[0] is None else np.concatenate(feats),
            )
        n = batch.shape[0]
        if n < self.min_batch:  # static-batch engine: pad with copies, keep the first n rows
            batch = np.concatenate([batch, np.repeat(batch[-1:], self.min_batch - n, axis=0)])
            results = {k: v[:n] for k, v in self._run(batch).items()}
        else:
            results = self._run(batch)
        out = self.card.output
        return InferenceOutput(
            logits=results[out.logits],
            cam=results[out.cam],
            features=results.get(out.features) if out.features else None,
        )

    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        cuda = self._cuda
        name = self._inputs[0]
        data = np.ascontiguousarray(batch, dtype=self._dtypes[name]).ravel()
        with self._ctx.active():
            self._context.set_input_shape(name, tuple(batch.shape))
            host_in = self._host[name][: data.size]
            host_in[:] = data
            cuda.memcpy_htod_async(self._device[name], host_in, self._stream)
            if not self._context.execute_async_v3(self._stream.handle):
                raise GapcamError(f"{self.path}: TensorRT execution failed")
            shapes = {}
            for tname in self._outputs:
                shapes[tname] = tuple(self._context.get_tensor_shape(tname))
                count = int(np.prod(shapes[tname]))
                cuda.memcpy_dtoh_async(self._host[tname][:count], self._device[tname], self._stream)
            self._stream.synchronize()
            return {
                tname: self._host[tname][: int(np.prod(shape))]
                .reshape(shape)
                .astype(np.float32, copy=True)
                for tname, shape in shapes.items()
            }

    # -------------------------------------------------------------- lifetime
    def close(self) -> None:
        ctx = getattr(self, "_ctx", None)
        if ctx is None:
            return
        with ctx.active():
            for mem in getattr(self, "_device", {}).values():
                mem.free()
            self._device = {}
            self._context = None
            self._engine = None
            self._runtime = None
        ctx.release()
        self._ctx = None

    def describe(self) -> str:
        info = self.runtime_info
        return (
            f"tensorrt backend, model {self.card.model_id}, TensorRT {info.tensorrt_version} "
            f"on {info.gpu_name} (sm {info.compute_capability}), max batch {self.max_batch}"
        )


def _with_precision(card: ModelCard, precision: str) -> ModelCard:
    data = card.to_dict()
    data["precision"] = precision
    return ModelCard.from_dict(data)
