"""TensorRT backend (Jetson): runs a serialized engine (``.plan``) built by ``engine-builder``.

A plan runs only on the GPU model and the exact TensorRT version it was built with, so every plan
has a ``.plan.json`` beside it (:mod:`gapcam.backends.plan_metadata`) and loading refuses a
mismatch with one line that says how to rebuild, instead of TensorRT's deserialisation error or,
worse, an engine that runs with another model card. The CUDA context is
:mod:`gapcam.backends.cuda_context`'s; this module is inference only. Inputs and outputs are
bound by tensor name (``set_tensor_address`` / ``execute_async_v3``, TensorRT 8.5+), and the batch
is set per call with ``set_input_shape`` within the engine's optimisation profile.

``tensorrt`` and ``pycuda`` are imported when a backend is made, so this module imports on any
machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gapcam.backends.base import Backend, InferenceOutput
from gapcam.backends.cuda_context import PrimaryContext, query_runtime_info
from gapcam.backends.plan_metadata import (
    PlanMetadata,
    incompatibility_message,
    load_plan_metadata,
    metadata_path_for,
    plan_problems,
    sha256_bytes,
)
from gapcam.errors import GapcamError, ModelContractError
from gapcam.model_card import ModelCard, expected_input_shape

__all__ = ["TensorRTBackend", "metadata_path_for"]


def _import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise GapcamError(
            f"TensorRT Python module cannot be imported ({exc}); on a Jetson install it with "
            "JetPack (python3-libnvinfer), or use the ONNX model with --backend onnxruntime"
        ) from exc
    return trt


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
        metadata: PlanMetadata | None = None,
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
            runtime_info = query_runtime_info(ctx, trt.__version__)
            problems = plan_problems(meta, runtime_info, card, sha256_bytes(plan))
            if problems:
                raise GapcamError(incompatibility_message(plan_path, meta, problems))
            super().__init__(_with_precision(meta.card(), meta.precision))
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
        cuda = self._ctx.cuda
        self._cuda = cuda
        self._logger = trt.Logger(trt.Logger.INFO if verbose else trt.Logger.WARNING)
        with self._ctx.active():
            self._runtime = trt.Runtime(self._logger)
            engine = self._runtime.deserialize_cuda_engine(plan)
            if engine is None:
                raise GapcamError(
                    f"{self.path}: TensorRT could not deserialise the engine (corrupt file or "
                    f"built elsewhere); rebuild it: {self.metadata.rebuild_command()}"
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
