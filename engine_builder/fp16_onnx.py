"""FP32 ONNX -> FP16 ONNX with FP32 inputs/outputs, for strongly typed TensorRT (11+).

TensorRT 11 has no ``BuilderFlag.FP16``: a layer runs in the type its tensors have in the graph.
An fp16 engine therefore needs fp16 weights and activations in the ONNX itself. The graph's
interface stays float32 (a ``Cast`` after each input and before each output) so the engine is
a drop-in replacement: the backend, verification and the model card see the same tensors.

Only operators whose fp16 semantics are plain (no type attributes, no precision-sensitive
auxiliary inputs) are converted; anything else is refused rather than silently mistyped.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from engine_builder.errors import EngineBuilderError

#: Operators converted as they are: all their float inputs/outputs become float16. The set
#: covers the graphs of ResNet, MobileNetV2/V3 and EfficientNet-Lite as PyTorch and tf2onnx
#: export them (ReLU6 is Clip, h-swish is HardSwish or x * HardSigmoid(x), squeeze-excite is
#: ReduceMean/GlobalAveragePool + Conv + Mul, shapes are Shape/Gather/Unsqueeze/Concat on int64).
FP16_SAFE_OPS = frozenset(
    {
        "Add",
        "AveragePool",
        "BatchNormalization",
        "Clip",
        "Concat",
        "Conv",
        "ConvTranspose",
        "Div",
        "Dropout",
        "Erf",
        "Exp",
        "Expand",
        "Flatten",
        "Gather",
        "Gemm",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "HardSigmoid",
        "HardSwish",
        "Identity",
        "LeakyRelu",
        "MatMul",
        "Max",
        "MaxPool",
        "Min",
        "Mul",
        "Neg",
        "Pad",
        "ReduceMean",
        "Relu",
        "Reshape",
        "Shape",
        "Sigmoid",
        "Slice",
        "Softmax",
        "Sqrt",
        "Squeeze",
        "Sub",
        "Tanh",
        "Transpose",
        "Unsqueeze",
    }
)
#: Operators with a float in an attribute, rewritten to float16 (see :func:`_retype_attributes`).
FP16_RETYPED_OPS = frozenset({"Constant", "ConstantOfShape", "Cast"})
_FP16_MAX = float(np.finfo(np.float16).max)


def convert_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` computing in float16, keeping float32 graph inputs and outputs."""
    unsupported = sorted({n.op_type for n in model.graph.node} - FP16_SAFE_OPS - FP16_RETYPED_OPS)
    if unsupported:
        raise EngineBuilderError(
            f"cannot convert operators {unsupported} to fp16 for strongly typed TensorRT; "
            "export an fp16 ONNX yourself or build with TensorRT 10 (BuilderFlag.FP16)"
        )
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            arr = numpy_helper.to_array(init)
            init.CopyFrom(
                numpy_helper.from_array(
                    np.clip(arr, -_FP16_MAX, _FP16_MAX).astype(np.float16), init.name
                )
            )
    for node in graph.node:
        _retype_attributes(node)
    float_inputs = [
        i.name for i in graph.input if i.type.tensor_type.elem_type == TensorProto.FLOAT
    ]
    float_outputs = [
        o.name for o in graph.output if o.type.tensor_type.elem_type == TensorProto.FLOAT
    ]
    renames = {name: f"{name}__fp16" for name in float_inputs + float_outputs}
    for node in graph.node:
        node.input[:] = [renames.get(x, x) for x in node.input]
        node.output[:] = [renames.get(x, x) for x in node.output]
    casts_in = [
        helper.make_node("Cast", [n], [renames[n]], to=TensorProto.FLOAT16, name=f"{n}__to_fp16")
        for n in float_inputs
    ]
    casts_out = [
        helper.make_node("Cast", [renames[n]], [n], to=TensorProto.FLOAT, name=f"{n}__to_fp32")
        for n in float_outputs
    ]
    nodes = casts_in + list(graph.node) + casts_out
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]  # float32 annotations are wrong now; shape inference redoes them
    out = onnx.shape_inference.infer_shapes(out, strict_mode=True)
    onnx.checker.check_model(out)
    return out


def _retype_attributes(node: onnx.NodeProto) -> None:
    """Float32 constants and casts to float32 inside the graph become float16.

    ``Constant`` values (weights and Clip bounds in some exports), ``ConstantOfShape`` fill
    values and ``Cast(to=FLOAT)`` would otherwise put float32 tensors into an fp16 graph, which
    strongly typed TensorRT rejects (mixed-type Mul/Add).
    """
    if node.op_type == "Cast":
        for a in node.attribute:
            if a.name == "to" and a.i == TensorProto.FLOAT:
                a.i = TensorProto.FLOAT16
        return
    if node.op_type not in ("Constant", "ConstantOfShape"):
        return
    for a in list(node.attribute):
        if a.name == "value" and a.t.data_type == TensorProto.FLOAT:
            arr = np.clip(numpy_helper.to_array(a.t), -_FP16_MAX, _FP16_MAX).astype(np.float16)
            a.t.CopyFrom(numpy_helper.from_array(arr, a.t.name))
        elif a.name in ("value_float", "value_floats"):
            values = np.asarray(a.f if a.name == "value_float" else list(a.floats), np.float16)
            node.attribute.remove(a)
            node.attribute.append(
                helper.make_attribute(
                    "value",
                    numpy_helper.from_array(
                        values.reshape(() if a.name == "value_float" else (-1,))
                    ),
                )
            )
