"""Find the GAP + linear classifier head of an ONNX graph, or say in one line why there is none.

Walking back from the classifier output, the head must be (each step optional unless stated):

* a trailing ``Softmax`` / ``LogSoftmax`` (and ``Identity``) - ``logits`` becomes its input;
* the linear layer (required): ``Gemm`` (``transA``/``transB``, ``alpha``, ``beta``),
  ``MatMul`` or ``MatMul`` + ``Add``, with constant weights (initializers or ``Constant`` nodes);
* pass-through ops: ``Flatten``, ``Reshape``, ``Squeeze``, ``Identity``, ``Dropout`` (and a 2-D
  ``Transpose`` matching ``transA``);
* the pooling (required): ``GlobalAveragePool``, ``ReduceMean`` over the two spatial axes (axes
  as attribute or input, any ``keepdims``), or an ``AveragePool`` whose kernel covers the map.

Then ``logits_c = sum_k W[k, c] * mean_xy f_k + b_c`` exactly, and the CAM is
``sum_k W[k, c] f_k(x, y)``: a bias-free 1x1 convolution of the pooled map ``f``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx

from gapcam.errors import GapcamError
from gapcam.onnx_import.graph import GraphIndex, attr, probe_shape

PASS_THROUGH_OPS = ("Flatten", "Reshape", "Squeeze", "Identity", "Dropout", "Transpose")
POOL_OPS = ("GlobalAveragePool", "ReduceMean", "AveragePool")
SOFTMAX_OPS = ("Softmax", "LogSoftmax")


class HeadNotFoundError(GapcamError):
    """The graph has no GAP + linear head gapcam can fuse a CAM into."""


@dataclass
class Head:
    """What fusion needs to know about the classifier head."""

    output: str  #: the graph output the head ends in (probabilities when ``softmax``)
    logits: str  #: the pre-softmax logits tensor
    features: str  #: the pooled 4-D feature map
    feature_layout: str  #: "NCHW" or "NHWC" (axes the pooling averaged over)
    channels: int  #: K
    cam_height: int
    cam_width: int
    weight: np.ndarray  #: (K, C) float32, alpha applied
    bias: np.ndarray  #: (C,) float32, beta applied (zeros without a bias)
    softmax: str | None  #: op type of the trailing softmax, if any
    path: list[str] = field(default_factory=list)  #: op types from the pooling to the output
    reshapes: list[str] = field(default_factory=list)  #: Reshape/Flatten nodes to make batch-free

    @property
    def num_classes(self) -> int:
        return int(self.weight.shape[1])

    def describe(self) -> str:
        return " -> ".join(self.path)


def _refuse(found: list[str], what: str) -> HeadNotFoundError:
    chain = " <- ".join(found) if found else "nothing"
    return HeadNotFoundError(
        f"no GAP + linear head: {what} (walking back from the output found {chain}); "
        "gapcam import needs global average pooling followed by one linear layer "
        "(an MLP or attention head after the pooling cannot be turned into a CAM)"
    )


def choose_output(model: onnx.ModelProto, name: str | None) -> str:
    outputs = [o.name for o in model.graph.output]
    if name is not None:
        if name not in outputs:
            raise GapcamError(f"output {name!r} not in the model's outputs {outputs}")
        return name
    if len(outputs) == 1:
        return outputs[0]
    for wanted in ("logits", "output", "probabilities"):
        if wanted in outputs:
            return wanted
    raise GapcamError(
        f"the model has {len(outputs)} outputs {outputs}; pass --output NAME for the classifier's"
    )


def find_head(model: onnx.ModelProto, output: str | None = None) -> Head:
    """Locate the head ending in ``output`` (the only graph output if not given)."""
    g = GraphIndex(model)
    out_name = choose_output(model, output)
    found: list[str] = []

    def producer(tensor: str) -> onnx.NodeProto:
        node = g.producer.get(tensor)
        if node is None:
            raise _refuse(found, f"tensor {tensor!r} is a graph input or constant, not computed")
        found.append(node.op_type)
        return node

    t = out_name
    node = producer(t)
    while node.op_type == "Identity":
        t = node.input[0]
        node = producer(t)
    softmax = None
    if node.op_type in SOFTMAX_OPS:
        softmax = node.op_type
        t = node.input[0]
        node = producer(t)
        while node.op_type == "Identity":
            t = node.input[0]
            node = producer(t)
    logits = t
    weight, bias, x, trans_a = _linear(g, node, found, producer)
    if weight.ndim != 2:
        raise _refuse(found, f"the linear layer's weight has shape {list(weight.shape)}, not 2-D")

    path_tail = [*([softmax] if softmax else [])]
    passthrough: list[str] = []
    reshapes: list[str] = []
    transposes = 0
    node = producer(x)
    while node.op_type in PASS_THROUGH_OPS:
        if node.op_type == "Transpose":
            perm = list(attr(node, "perm", []) or [])
            if perm != [1, 0]:
                raise _refuse(found, f"a Transpose with perm {perm} sits before the linear layer")
            transposes += 1
        if node.op_type in ("Reshape", "Flatten"):
            reshapes.append(node.name or node.output[0])
        passthrough.append(node.op_type)
        x = node.input[0]
        node = producer(x)
    if transposes % 2 != trans_a:
        raise _refuse(found, "the Gemm's transA does not match the transposes before it")
    if node.op_type not in POOL_OPS:
        raise _refuse(
            found,
            f"{node.op_type} feeds the linear layer where global average pooling was expected",
        )
    features = node.input[0]
    shape = g.shape(features)
    if shape is None or len(shape) != 4 or not all(isinstance(v, int) for v in shape[1:]):
        shape = probe_shape(model, features) or shape
    if shape is None or len(shape) != 4:
        raise _refuse(
            found,
            f"the pooled tensor {features!r} has shape {shape}, not a known 4-D feature map "
            "(export with a fixed input size)",
        )
    layout = _pool_layout(g, node, shape, found)
    h, w, k = (shape[2], shape[3], shape[1]) if layout == "NCHW" else (shape[1], shape[2], shape[3])
    if not all(isinstance(v, int) and v > 0 for v in (h, w, k)):
        raise _refuse(
            found,
            f"the feature map {features!r} has no static size ({shape}); export with a fixed "
            "input size",
        )
    if weight.shape[0] != k:
        raise _refuse(
            found,
            f"the linear layer takes {weight.shape[0]} inputs but the pooled map has {k} channels",
        )
    passthrough.reverse()
    return Head(
        output=out_name,
        logits=logits,
        features=features,
        feature_layout=layout,
        channels=int(k),
        cam_height=int(h),
        cam_width=int(w),
        weight=weight.astype(np.float32),
        bias=bias.astype(np.float32),
        softmax=softmax,
        path=[node.op_type, *passthrough, *_linear_ops(found), *path_tail],
        reshapes=reshapes,
    )


def _linear_ops(found: list[str]) -> list[str]:
    ops = [op for op in found if op in ("Gemm", "MatMul", "Add")]
    return ops[::-1][:2] if ops else []


def _linear(g: GraphIndex, node: onnx.NodeProto, found: list[str], producer):
    """(weight (K, C), bias (C,), input tensor, transA) of the final linear layer."""
    if node.op_type == "Gemm":
        w = g.constant(node.input[1])
        if w is None:
            raise _refuse(found, "the Gemm's weights are computed at run time, not constant")
        if attr(node, "transB", 0):
            w = w.T
        w = w * float(attr(node, "alpha", 1.0))
        c = w.shape[1] if w.ndim == 2 else 0
        bias = np.zeros(c, np.float32)
        if len(node.input) > 2 and node.input[2]:
            b = g.constant(node.input[2])
            if b is None:
                raise _refuse(found, "the Gemm's bias is computed at run time, not constant")
            bias = np.broadcast_to(np.asarray(b, np.float32).reshape(-1), (c,)) * float(
                attr(node, "beta", 1.0)
            )
        return (
            np.asarray(w, np.float32),
            np.asarray(bias, np.float32),
            node.input[0],
            int(attr(node, "transA", 0)),
        )
    bias = None
    if node.op_type == "Add":
        a, b = node.input[0], node.input[1]
        ca, cb = g.constant(a), g.constant(b)
        if ca is None and cb is None:
            raise _refuse(found, "the last Add has no constant operand (a residual, not a bias)")
        bias, other = (ca, b) if ca is not None else (cb, a)
        node = producer(other)
        if node.op_type != "MatMul":
            raise _refuse(
                found, f"{node.op_type} feeds the bias Add where a MatMul/Gemm was expected"
            )
    if node.op_type != "MatMul":
        raise _refuse(
            found,
            f"the output is computed by {node.op_type}, not by a linear layer "
            "(Gemm, MatMul or MatMul + Add)",
        )
    w = g.constant(node.input[1])
    if w is None:
        raise _refuse(found, "the MatMul's weights are computed at run time (attention?)")
    c = w.shape[-1]
    bias_v = (
        np.zeros(c, np.float32)
        if bias is None
        else np.broadcast_to(np.asarray(bias, np.float32).reshape(-1), (c,))
    )
    return np.asarray(w, np.float32), np.asarray(bias_v, np.float32), node.input[0], 0


def _pool_layout(g: GraphIndex, node: onnx.NodeProto, shape: list, found: list[str]) -> str:
    """Which axes the pooling averages: NCHW (2, 3) or NHWC (1, 2); refuse anything else."""
    if node.op_type == "GlobalAveragePool":
        return "NCHW"
    if node.op_type == "AveragePool":
        kernel = list(attr(node, "kernel_shape", []))
        pads = list(attr(node, "pads", []) or [])
        if kernel != list(shape[2:]) or any(pads):
            raise _refuse(
                found,
                f"an AveragePool with kernel {kernel} over a {shape[2:]} map is not a global "
                "average",
            )
        return "NCHW"
    axes = attr(node, "axes", None)
    if axes is None and len(node.input) > 1 and node.input[1]:
        value = g.constant(node.input[1])
        if value is None:
            raise _refuse(found, "the ReduceMean's axes are computed at run time")
        axes = value.reshape(-1).tolist()
    if axes is None:
        raise _refuse(found, "a ReduceMean over all axes is not a spatial average")
    norm = sorted(int(a) % 4 for a in axes)
    if norm == [2, 3]:
        return "NCHW"
    if norm == [1, 2]:
        return "NHWC"
    raise _refuse(found, f"a ReduceMean over axes {list(axes)} is not an average over H, W")
