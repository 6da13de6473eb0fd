"""Explicit INT8 quantisation (Q/DQ ONNX) that TensorRT 8.5 - 11 builds, checked against FP32 on CPU.

Steps, all on CPU:

1. ``quant_pre_process`` (shape inference, constant folding) on the FP32 model.
2. Activation ranges on the calibration set through the model card's preprocessing
   (:mod:`engine_builder.activations`): TensorRT's entropy algorithm, or a percentile.
3. ONNX Runtime ``quantize_static`` with the settings TensorRT accepts: QDQ format, int8
   activations and weights, per-channel symmetric weights, symmetric activations, no bias
   quantisation, reduce_range off; Q/DQ only on the inputs of Conv/Gemm/MatMul (TensorRT's
   recommended placement: outputs, and so the logits and CAMs, stay float).
4. The graph rules of :mod:`engine_builder.qdq_rules`.
5. A report against FP32 on a validation set, with the Q/DQ model run by ONNX Runtime at
   *basic* optimisation (fake-quant semantics, as TensorRT computes; fused int8 CPU kernels at
   higher levels can saturate on AVX2 machines without VNNI and disagree with TensorRT).

The quantised model is written with its own model card (precision ``int8``, its sha256, and
the FP32 model and calibration set it came from), and only if the report passes.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from engine_builder.activations import collect_amax, input_amax
from engine_builder.calibration_set import ImageSet
from engine_builder.compare import Comparison, Thresholds, compare_backends, label_indices
from engine_builder.errors import EngineBuilderError, VerificationFailedError
from engine_builder.qdq_rules import require_tensorrt_qdq
from gapcam.backends.onnxruntime_backend import OnnxRuntimeBackend
from gapcam.labels import unknown_labels_note
from gapcam.model_card import ModelCard, card_path_for, sha256_file

METHODS = ("entropy", "percentile", "max")
#: Operators whose inputs get Q/DQ (TensorRT fuses them into int8 kernels).
QUANTIZED_OPS = ["Conv", "Gemm", "MatMul"]
HEAD_CHOICES = ("int8", "float")
#: The quantisation targets: decisions, heat maps and accuracy barely move.
QUANTIZE_THRESHOLDS = Thresholds(
    min_agreement=0.99, min_cam_correlation=0.95, max_accuracy_drop=0.5
)


def tensorrt_qdq_settings() -> dict[str, Any]:
    """``quantize_static`` keyword arguments that produce a model TensorRT accepts (TENSORRT.md)."""
    from onnxruntime.quantization import QuantFormat, QuantType

    return {
        "quant_format": QuantFormat.QDQ,
        "activation_type": QuantType.QInt8,
        "weight_type": QuantType.QInt8,
        "per_channel": True,
        "reduce_range": False,
        "op_types_to_quantize": QUANTIZED_OPS,
        "extra_options": {
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "QuantizeBias": False,
            "OpTypesToExcludeOutputQuantization": QUANTIZED_OPS,
        },
    }


def qdq_path_for(onnx_path: str | Path) -> Path:
    """``x.onnx`` -> ``x.int8.qdq.onnx`` (its card: ``x.int8.qdq.json``)."""
    p = Path(onnx_path)
    return p.with_name(f"{p.stem}.int8.qdq.onnx")


@dataclass
class QuantizeResult:
    model_path: Path
    card: ModelCard
    report: dict[str, Any]
    comparison: Comparison
    failures: list[str]


@contextlib.contextmanager
def _quiet_onnxruntime_logs():
    """ORT's quantiser logs advice on the root logger; our report says what matters."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _strip_unused_opsets(model: onnx.ModelProto) -> None:
    used = {n.domain for n in model.graph.node} | {""}
    keep = [imp for imp in model.opset_import if imp.domain in used or imp.domain == "ai.onnx"]
    del model.opset_import[:]
    model.opset_import.extend(keep)


def head_nodes(model: onnx.ModelProto, card: ModelCard) -> list[str]:
    """Names of the nodes that produce the logits and the CAMs (the classifier head).

    Unnamed nodes get a name here (the quantiser excludes nodes by name).
    """
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    wanted = {card.output.logits, card.output.cam}
    return [n.name for n in model.graph.node if wanted & set(n.output)]


def _quantize_with_ranges(
    pre_path: Path,
    out_path: Path,
    amax: dict[str, float],
    workdir: Path,
    exclude: list[str] | None = None,
) -> None:
    """Run ORT's static Q/DQ quantiser with our precomputed activation ranges."""
    from onnxruntime.quantization import CalibrationMethod, quantize_static
    from onnxruntime.quantization.calibrate import TensorsData

    ranges = TensorsData(
        CalibrationMethod.MinMax,
        {n: (np.array(-a, np.float32), np.array(a, np.float32)) for n, a in amax.items()},
    )
    settings = tensorrt_qdq_settings()
    if exclude:
        settings["nodes_to_exclude"] = exclude
    if "calibration_cache_path" in inspect.signature(quantize_static).parameters:
        from onnxruntime.quantization.calibrate import save_tensors_data

        cache = workdir / "ranges.json"
        save_tensors_data(ranges, cache)
        quantize_static(
            str(pre_path),
            str(out_path),
            None,
            calibrate_method=CalibrationMethod.MinMax,
            calibration_cache_path=str(cache),
            **settings,
        )
        return
    # Older ONNX Runtime: the same quantiser class that quantize_static drives.
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer

    quantizer = QDQQuantizer(
        onnx.load(str(pre_path)),
        settings["per_channel"],
        settings["reduce_range"],
        settings["weight_type"],
        settings["activation_type"],
        ranges,
        None,
        exclude,
        settings["op_types_to_quantize"],
        settings["extra_options"],
    )
    quantizer.quantize_model()
    quantizer.model.save_model_to_file(str(out_path), False)


def activation_ranges(
    fp32_path: Path,
    card: ModelCard,
    calib: ImageSet,
    *,
    method: str,
    percentile: float,
    batch_size: int = 16,
    say: Callable[[str], None] = print,
) -> dict[str, float]:
    """Preprocess the calibration images once and compute ``amax`` per tensor."""
    if method not in METHODS:
        raise EngineBuilderError(f"unknown calibration method {method!r}; use {', '.join(METHODS)}")
    say(f"calibration: {len(calib.entries)} images from {calib.name} ({method})")
    static = static_batch(fp32_path)
    batches = list(fixed_size(calib.batches(card.input, static or batch_size), static))
    exact = {card.input.name: input_amax(card.input.mean, card.input.std)}
    return collect_amax(
        fp32_path,
        lambda: batches,
        method=method,
        percentile=percentile,
        fixed=exact,
        progress=say,
    )


def static_batch(model: str | Path | onnx.ModelProto) -> int | None:
    """The fixed batch size of a graph's input (PyTorch's default export: 1), or ``None``."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        dims = inp.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            return int(dims[0].dim_value)
        return None
    return None


def fixed_size(batches, size: int | None):  # noqa: ANN001, ANN201 - iterables of arrays
    """Batches of exactly ``size`` rows (the last padded with copies) for a static-batch graph."""
    for batch in batches:
        if size is None or len(batch) == size:
            yield batch
            continue
        for i in range(0, len(batch), size):
            chunk = batch[i : i + size]
            if len(chunk) < size:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], size - len(chunk), axis=0)])
            yield chunk


def evaluate_qdq(
    fp32_path: Path,
    qdq_path: Path,
    fp32_card: ModelCard,
    qdq_card: ModelCard,
    data: ImageSet,
    batch_size: int = 32,
) -> Comparison:
    """Q/DQ model (ORT basic optimisation) vs FP32 (ORT full optimisation) on ``data``."""
    reference = OnnxRuntimeBackend(fp32_path, fp32_card)
    candidate = OnnxRuntimeBackend(qdq_path, qdq_card, optimization="basic")
    batches = data.batches(fp32_card.input, batch_size)
    return compare_backends(reference, candidate, batches, label_indices(data.labels, fp32_card))


def quantize_model(
    fp32_path: str | Path,
    card: ModelCard,
    calib: ImageSet,
    out_path: str | Path,
    *,
    validation: ImageSet | None,
    method: str = "entropy",
    percentile: float = 99.99,
    head: str = "int8",
    thresholds: Thresholds = QUANTIZE_THRESHOLDS,
    force: bool = False,
    say: Callable[[str], None] = print,
    fallback_methods: bool = True,
) -> QuantizeResult:
    """Quantise, check the rules, evaluate, and publish model + card + report if they pass.

    ``head="float"`` keeps the classifier head (the Gemm of the logits and the 1x1 CAM
    convolution) unquantised: both are tiny, and they are where the decision and the heat map
    are made.

    Without ``validation``, every 5th image of ``calib`` is held out and the rest calibrates
    (the report says so). With ``fallback_methods``, an entropy calibration that misses the
    thresholds (typically the CAM correlation of MobileNet-like nets, whose ReLU6 activations
    entropy clips too hard) is retried with ``percentile`` and then ``max``; the first method
    that passes is kept and named in the report and the card.
    """
    if head not in HEAD_CHOICES:
        raise EngineBuilderError(f"head must be one of {', '.join(HEAD_CHOICES)}")
    if method not in METHODS:
        raise EngineBuilderError(f"unknown calibration method {method!r}; use {', '.join(METHODS)}")
    from onnxruntime.quantization import quant_pre_process

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    held_out = validation is None and len(calib.entries) >= 10
    if held_out:
        calib, validation = calib.holdout(5)
        say(
            f"no --val: holding out {len(validation.entries)} of "
            f"{len(calib.entries) + len(validation.entries)} calibration images for validation"
        )
    note = unknown_labels_note((validation or calib).labels, card.classes)
    if note:
        say(note)
    methods = [method]
    if fallback_methods and method == "entropy":
        methods += ["percentile", "max"]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".quantize-", dir=out_path.parent) as tmp:
        work = Path(tmp)
        pre = work / "pre.onnx"
        with _quiet_onnxruntime_logs():
            quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        pre_model = onnx.load(str(pre))
        exclude = head_nodes(pre_model, card) if head == "float" else []
        onnx.save(pre_model, str(pre))
        data = validation or calib
        say(
            f"evaluating Q/DQ vs FP32 on {len(data.entries)} images from {data.name}"
            + ("" if validation else " (the calibration set: pass --val for held-out data)")
        )
        tried: list[dict[str, Any]] = []
        chosen = None
        for m in methods:
            attempt = work / m
            attempt.mkdir()
            amax = activation_ranges(pre, card, calib, method=m, percentile=percentile, say=say)
            raw = attempt / "qdq.onnx"
            with _quiet_onnxruntime_logs():
                _quantize_with_ranges(pre, raw, amax, attempt, exclude)
            model = onnx.load(str(raw))
            _strip_unused_opsets(model)
            require_tensorrt_qdq(model, str(out_path))
            tmp_model = attempt / out_path.name
            onnx.save(model, str(tmp_model))
            qdq_card = card_for_qdq(
                card, fp32_path, tmp_model, out_path.parent, calib, m, percentile, head
            )
            tmp_card = card_path_for(tmp_model)
            qdq_card.save(tmp_card)
            comparison = evaluate_qdq(fp32_path, tmp_model, card, qdq_card, data)
            failures = comparison.failures(thresholds)
            tried.append({"method": m, "failures": failures, **_brief(comparison)})
            chosen = (m, tmp_model, tmp_card, comparison, failures)
            if not failures:
                break
            if m != methods[-1]:
                say(
                    f"{m} calibration misses the targets ({'; '.join(failures)}); trying {methods[methods.index(m) + 1]}"
                )
        assert chosen is not None
        if chosen[4] and force:  # none passed: --force writes the first (the requested) method
            first = tried[0]["method"]
            chosen = (
                first,
                work / first / out_path.name,
                card_path_for(work / first / out_path.name),
                *_rerun(fp32_path, work / first / out_path.name, card, data, thresholds),
            )
        m, tmp_model, tmp_card, comparison, failures = chosen
        report = {
            "model": str(out_path),
            "fp32_model": str(fp32_path),
            "method": m,
            "methods_tried": tried,
            "percentile": percentile if m == "percentile" else None,
            "head": head,
            "calibration_set": calib.describe(),
            "validation_set": data.describe(),
            "validation_held_out_from_calib": held_out,
            "validation_note": note,
            "evaluated_with": "onnxruntime, Q/DQ at ORT_ENABLE_BASIC, FP32 at ORT_ENABLE_ALL",
            "thresholds": thresholds.__dict__,
            "comparison": comparison.to_dict(),
            "passed": not failures,
            "failures": failures,
        }
        report_path = out_path.with_suffix(".report.json")
        if failures and not force:
            report_path.write_text(json.dumps(report, indent=2) + "\n")
            raise VerificationFailedError(
                f"{out_path}: Q/DQ model below thresholds with {', '.join(methods)} "
                f"({'; '.join(failures)}); not written (report: {report_path}); try a larger "
                f"--calib set{', --head float' if head != 'float' else ''}, or --force"
            )
        if m != method:
            say(f"kept {m} calibration (the first that passes the targets)")
        os.replace(tmp_model, out_path)
        os.replace(tmp_card, card_path_for(out_path))
        report_path.write_text(json.dumps(report, indent=2) + "\n")
    return QuantizeResult(
        out_path, ModelCard.load(card_path_for(out_path)), report, comparison, failures
    )


def _brief(c: Comparison) -> dict[str, Any]:
    return {
        "top1_agreement": c.top1_agreement,
        "cam_correlation_mean": c.cam_correlation_mean,
    }


def _rerun(fp32_path, qdq_path, card, data, thresholds):  # noqa: ANN001, ANN202
    qdq_card = ModelCard.load(card_path_for(qdq_path))
    comparison = evaluate_qdq(fp32_path, qdq_path, card, qdq_card, data)
    return comparison, comparison.failures(thresholds)


def card_for_qdq(
    card: ModelCard,
    fp32_path: Path,
    qdq_path: Path,
    final_dir: Path,
    calib: ImageSet,
    method: str,
    percentile: float,
    head: str = "int8",
) -> ModelCard:
    """The FP32 card with precision int8, the Q/DQ file's sha256 and where it came from.

    ``fp32_onnx`` is relative to the directory the Q/DQ model is published in, so the pair can
    be copied together (verification of engines built from it needs the FP32 reference).
    """
    data = card.to_dict()
    data["precision"] = "int8"
    data["onnx_sha256"] = sha256_file(qdq_path)
    prov = dict(data.get("provenance") or {})
    prov["quantization"] = {
        "format": "QDQ (explicit int8, TensorRT rules)",
        "method": method,
        "percentile": percentile if method == "percentile" else None,
        "head": head,
        "fp32_onnx": os.path.relpath(fp32_path.resolve(), final_dir.resolve()),
        "fp32_onnx_sha256": card.onnx_sha256 or sha256_file(fp32_path),
        "calibration_set": calib.describe(),
    }
    data["provenance"] = prov
    return ModelCard.from_dict(data)
