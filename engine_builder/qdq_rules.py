"""The rules a Q/DQ (explicitly quantised) ONNX model must follow for TensorRT 8.5 - 11.

TensorRT reads INT8 from QuantizeLinear/DequantizeLinear pairs, but only in the form it
implements: symmetric int8 (zero points 0), per-tensor activation scales, per-channel weight
scales on the output-channel axis, float biases (an int32 bias DequantizeLinear stops the ONNX
parser) and opset <= 17 (TensorRT 8.5's parser). A model that breaks one of them either fails to
parse on the Jetson, minutes into a build, or silently runs another precision; checking here,
on the PC, turns that into one line before anything is copied to the device.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from engine_builder.errors import EngineBuilderError

MAX_OPSET = 17
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def is_qdq_model(model: onnx.ModelProto) -> bool:
    return any(n.op_type in QDQ_OPS for n in model.graph.node)


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(onnx.helper.get_attribute_value(a))
    return default


def _weight_axis(consumer: onnx.NodeProto, slot: int) -> int | None:
    """Output-channel axis of the weight feeding ``consumer`` input ``slot`` (None: not a weight)."""
    if consumer.op_type == "Conv" and slot == 1:
        return 0  # [M, C/g, kh, kw]
    if consumer.op_type == "ConvTranspose" and slot == 1:
        return 1  # [C, M/g, kh, kw]
    if consumer.op_type == "Gemm" and slot == 1:
        return 0 if _attr(consumer, "transB", 0) else 1
    if consumer.op_type == "MatMul" and slot == 1:
        return 1
    return None


def check_qdq_model(model: onnx.ModelProto) -> list[str]:
    """Every rule violation, one short line each (empty: TensorRT will take the model)."""
    problems: list[str] = []
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx") and imp.version > MAX_OPSET:
            problems.append(f"opset {imp.version} > {MAX_OPSET} (TensorRT 8.5 parses opset <= 17)")
    inits = {i.name: i for i in model.graph.initializer}
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = defaultdict(list)
    for node in model.graph.node:
        for slot, name in enumerate(node.input):
            consumers[name].append((node, slot))

    def const(name: str) -> np.ndarray | None:
        return numpy_helper.to_array(inits[name]) if name in inits else None

    for node in model.graph.node:
        if node.op_type not in QDQ_OPS:
            continue
        label = f"{node.op_type} {node.name or node.output[0]}"
        scale = const(node.input[1]) if len(node.input) > 1 else None
        if scale is None:
            problems.append(f"{label}: scale is not a constant initializer")
            continue
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            problems.append(f"{label}: scale must be finite and positive")
        zp_name = node.input[2] if len(node.input) > 2 else ""
        if not zp_name:
            problems.append(f"{label}: no zero point (defaults to uint8); use symmetric int8")
        else:
            zp_init = inits.get(zp_name)
            if zp_init is None:
                problems.append(f"{label}: zero point is not a constant initializer")
            else:
                if zp_init.data_type != TensorProto.INT8:
                    problems.append(
                        f"{label}: zero point type {TensorProto.DataType.Name(zp_init.data_type)}"
                        " (TensorRT needs INT8)"
                    )
                if np.any(numpy_helper.to_array(zp_init) != 0):
                    problems.append(
                        f"{label}: non-zero zero point (asymmetric); use symmetric int8"
                    )
        x_init = inits.get(node.input[0])
        if node.op_type == "DequantizeLinear" and x_init is not None:
            if x_init.data_type == TensorProto.INT32:
                problems.append(
                    f"{label}: int32 bias DequantizeLinear (breaks the TensorRT ONNX parser); "
                    "quantise with QuantizeBias=False"
                )
                continue
            weight = numpy_helper.to_array(x_init)
            if weight.dtype == np.int8 and np.any(weight == -128):
                problems.append(f"{label}: weight uses -128 (symmetric range is [-127, 127])")
            uses = [(c, s) for c, s in consumers[node.output[0]] if _weight_axis(c, s) is not None]
            for consumer, slot in uses:
                want = _weight_axis(consumer, slot)
                channels = weight.shape[want]
                axis = _attr(node, "axis", 1)
                axis = axis + weight.ndim if axis < 0 else axis
                if scale.size == 1 and channels > 1:
                    problems.append(
                        f"{label}: per-tensor weight scale for {consumer.op_type} "
                        f"{consumer.name}; use per-channel (per_channel=True)"
                    )
                elif scale.size > 1 and (axis != want or scale.size != channels):
                    problems.append(
                        f"{label}: per-channel scales on axis {axis} ({scale.size}) but "
                        f"{consumer.op_type} output channels are axis {want} ({channels})"
                    )
        elif scale.size != 1:
            problems.append(f"{label}: activation scale must be per-tensor (got {scale.size})")
        if node.op_type == "QuantizeLinear":
            for consumer, _ in consumers[node.output[0]]:
                if consumer.op_type != "DequantizeLinear":
                    problems.append(
                        f"{label}: output feeds {consumer.op_type}, not a DequantizeLinear"
                    )
                elif consumer.input[1:3] != node.input[1:3] and not _same_params(
                    inits, node, consumer
                ):
                    problems.append(f"{label}: its DequantizeLinear uses other scale/zero point")
    return problems


def _same_params(inits: dict, q: onnx.NodeProto, dq: onnx.NodeProto) -> bool:
    if len(q.input) != len(dq.input):
        return False
    try:
        return all(
            np.array_equal(numpy_helper.to_array(inits[a]), numpy_helper.to_array(inits[b]))
            for a, b in zip(q.input[1:3], dq.input[1:3], strict=True)
        )
    except KeyError:
        return False


def require_tensorrt_qdq(model: onnx.ModelProto, where: str) -> None:
    """Raise one line naming the first violations; silent when the model follows the rules."""
    problems = check_qdq_model(model)
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        raise EngineBuilderError(
            f"{where}: Q/DQ model breaks TensorRT's rules: {'; '.join(problems[:3])}{more}"
        )
