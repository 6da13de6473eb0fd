"""ONNX Runtime backend: the embedded default on every machine (CPU), also used as the FP32
reference that TensorRT engines and INT8 models are verified against."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gapcam.backends.base import Backend, InferenceOutput
from gapcam.errors import ModelContractError
from gapcam.model_card import ModelCard, input_shape_problem, load_card_for_onnx

_OPT_LEVELS = {"disable", "basic", "extended", "all"}


class OnnxRuntimeBackend(Backend):
    """Runs an exported ``.onnx`` with ONNX Runtime.

    ``optimization="basic"`` is what Q/DQ INT8 models must be checked with (fake-quant semantics,
    matching TensorRT); FP32 models use "all".
    """

    name = "onnxruntime"

    def __init__(
        self,
        onnx_path: str | Path,
        card: ModelCard | None = None,
        *,
        threads: int | None = None,
        optimization: str = "all",
        providers: list[str] | None = None,
    ) -> None:
        import onnxruntime as ort  # local: keeps `import gapcam` light

        onnx_path = Path(onnx_path)
        card = card or load_card_for_onnx(onnx_path)
        super().__init__(card)
        if optimization not in _OPT_LEVELS:
            raise ValueError(f"optimization must be one of {sorted(_OPT_LEVELS)}")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[optimization]
        threads = threads if threads is not None else int(os.environ.get("GAPCAM_ORT_THREADS", "0"))
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(onnx_path), opts, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own exception types for invalid models
            raise ModelContractError(
                f"{onnx_path}: ONNX Runtime cannot load this model ({str(exc).splitlines()[0]})"
            ) from exc
        self.path = onnx_path
        self._check_io()

    def _check_io(self) -> None:
        """Refuse a graph whose inputs/outputs disagree with its card, before any frame runs."""
        out = self.card.output
        inputs = self.session.get_inputs()
        names = {o.name: o for o in self.session.get_outputs()}
        problems = []
        if len(inputs) != 1 or inputs[0].name != self.card.input.name:
            problems.append(f"input {[i.name for i in inputs]} != card {self.card.input.name!r}")
        else:
            problem = input_shape_problem(inputs[0].shape, self.card.input)
            if problem:
                # A wrong channel count or layout is a property of the model, not of a stale
                # card: say it alone, before ORT fails on the first frame with a traceback.
                raise ModelContractError(f"{self.path}: {problem}")
        for want in (out.logits, out.cam):
            if want not in names:
                problems.append(f"output {want!r} missing")
        if out.logits in names and names[out.logits].shape[-1] != out.num_classes:
            problems.append(
                f"logits width {names[out.logits].shape[-1]} != {out.num_classes} classes"
            )
        if out.cam in names and names[out.cam].shape[1:] != [
            out.num_classes,
            out.cam_height,
            out.cam_width,
        ]:
            problems.append(f"cam shape {names[out.cam].shape} != card")
        if problems:
            raise ModelContractError(
                f"{self.path}: model does not match its card ({'; '.join(problems)}); "
                "re-export model and card together"
            )
        self._outputs = [out.logits, out.cam]
        if out.features and out.features in names:
            self._outputs.append(out.features)
        first = inputs[0].shape[0]
        #: The batch size the graph was exported with (PyTorch's default export fixes it to 1);
        #: ``None`` when the batch axis is dynamic.
        self.static_batch: int | None = first if isinstance(first, int) and first > 0 else None

    @property
    def has_features(self) -> bool:
        return len(self._outputs) > 2

    def infer(self, batch: np.ndarray) -> InferenceOutput:
        b = self.static_batch
        if b is None or len(batch) == b:
            res = self.session.run(self._outputs, {self.card.input.name: batch})
            return InferenceOutput(
                logits=res[0], cam=res[1], features=res[2] if len(res) > 2 else None
            )
        # A static-batch graph: run it in chunks of its batch, the last one padded.
        parts = []
        for i in range(0, len(batch), b):
            chunk = batch[i : i + b]
            n = len(chunk)
            if n < b:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], b - n, axis=0)])
            parts.append(
                [r[:n] for r in self.session.run(self._outputs, {self.card.input.name: chunk})]
            )
        res = [np.concatenate([p[k] for p in parts]) for k in range(len(self._outputs))]
        return InferenceOutput(logits=res[0], cam=res[1], features=res[2] if len(res) > 2 else None)
