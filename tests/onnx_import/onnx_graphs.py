"""Tiny ONNX classifiers built with ``onnx.helper``: one per head pattern ``gapcam import``
accepts and one per head it must refuse. Backbone: Conv(3->K, 3x3) + Relu on an 8x8 input."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

K, C, H, W = 4, 3, 8, 8
RNG = np.random.default_rng(0)
CONV_W = RNG.standard_normal((K, 3, 3, 3)).astype(np.float32)
FC_W = RNG.standard_normal((C, K)).astype(np.float32)  # torch layout (out, in)
FC_B = RNG.standard_normal(C).astype(np.float32)


def _init(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def _const(name: str, value) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], value=numpy_helper.from_array(np.asarray(value))
    )


def build(
    head: list[onnx.NodeProto],
    inits: list[onnx.TensorProto] = (),
    *,
    out: str = "y",
    out_shape=(1, C),
    opset: int = 17,
    nhwc: bool = False,
    in_shape=None,
    extra_outputs: list[onnx.ValueInfoProto] = (),
    check: bool = True,
) -> onnx.ModelProto:
    """Backbone ending in tensor ``f`` (NCHW; NHWC when ``nhwc``) followed by ``head``."""
    nodes = []
    x = "x"
    if nhwc:
        nodes.append(helper.make_node("Transpose", ["x"], ["x_nchw"], perm=[0, 3, 1, 2]))
        x = "x_nchw"
    nodes += [
        helper.make_node("Conv", [x, "conv_w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["f_nchw" if nhwc else "f"]),
    ]
    if nhwc:
        nodes.append(helper.make_node("Transpose", ["f_nchw"], ["f"], perm=[0, 2, 3, 1]))
    shape = in_shape or ([1, H, W, 3] if nhwc else [1, 3, H, W])
    graph = helper.make_graph(
        nodes + list(head),
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, list(out_shape)), *extra_outputs],
        [_init("conv_w", CONV_W), *inits],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if check:
        onnx.checker.check_model(model)
    return model


def gemm(inp: str, out: str = "y", **attrs) -> tuple[onnx.NodeProto, list[onnx.TensorProto]]:
    """Gemm with weights in the layout its transB wants and a bias, alpha/beta folded back."""
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    w = FC_W / alpha
    w = w if attrs.get("transB", 0) else w.T
    node = helper.make_node("Gemm", [inp, "fc_w", "fc_b"], [out], **attrs)
    return node, [_init("fc_w", w), _init("fc_b", FC_B / beta)]


def gap_gemm_head() -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    n, i = gemm("p", transB=1)
    return [
        helper.make_node("GlobalAveragePool", ["f"], ["g"]),
        helper.make_node("Flatten", ["g"], ["p"]),
        n,
    ], i


def accepted() -> dict[str, onnx.ModelProto]:
    """Every head pattern of issue 10; all compute ``FC_W @ mean_xy(f) + FC_B``."""
    m: dict[str, onnx.ModelProto] = {}
    n, i = gemm("p", transB=1)
    m["gap_flatten_gemm"] = build(
        [
            helper.make_node("GlobalAveragePool", ["f"], ["g"]),
            helper.make_node("Flatten", ["g"], ["p"]),
            n,
        ],
        i,
    )
    n, i = gemm("p", alpha=0.5, beta=2.0)
    m["gap_reshape_gemm_alpha_beta"] = build(
        [
            helper.make_node("GlobalAveragePool", ["f"], ["g"]),
            helper.make_node("Reshape", ["g", "shape"], ["p"]),
            n,
        ],
        [*i, _init("shape", np.array([1, K], np.int64))],
    )
    m["reducemean_attr_squeeze_matmul_add"] = build(
        [
            helper.make_node("ReduceMean", ["f"], ["g"], axes=[2, 3], keepdims=1),
            helper.make_node("Squeeze", ["g", "sq_axes"], ["p"]),
            helper.make_node("MatMul", ["p", "fc_wt"], ["mm"]),
            helper.make_node("Add", ["fc_b", "mm"], ["y"]),  # bias first: either order
        ],
        [_init("sq_axes", np.array([2, 3], np.int64)), _init("fc_wt", FC_W.T), _init("fc_b", FC_B)],
    )
    m["reducemean_axes_input_opset18_keepdims0"] = build(
        [
            _const("axes", np.array([-2, -1], np.int64)),
            helper.make_node("ReduceMean", ["f", "axes"], ["p"], keepdims=0),
            helper.make_node("MatMul", ["p", "fc_wt"], ["mm"]),
            helper.make_node("Add", ["mm", "fc_b"], ["y"]),
        ],
        [_init("fc_wt", FC_W.T), _init("fc_b", FC_B)],
        opset=18,
    )
    m["averagepool_dropout_identity_constant_weights"] = build(
        [
            helper.make_node("AveragePool", ["f"], ["g"], kernel_shape=[H, W]),
            helper.make_node("Flatten", ["g"], ["p0"]),
            helper.make_node("Dropout", ["p0"], ["p1"]),
            helper.make_node("Identity", ["p1"], ["p"]),
            _const("w_const", FC_W),
            _const("b_const", FC_B),
            helper.make_node("Gemm", ["p", "w_const", "b_const"], ["y"], transB=1),
        ]
    )
    n, i = gemm("pt", transA=1, transB=1)
    m["gemm_transA"] = build(
        [
            helper.make_node("GlobalAveragePool", ["f"], ["g"]),
            helper.make_node("Flatten", ["g"], ["p"]),
            helper.make_node("Transpose", ["p"], ["pt"], perm=[1, 0]),
            n,
        ],
        i,
    )
    n, i = gemm("p", out="z", transB=1)
    m["trailing_softmax"] = build(
        [
            helper.make_node("GlobalAveragePool", ["f"], ["g"]),
            helper.make_node("Flatten", ["g"], ["p"]),
            n,
            helper.make_node("Softmax", ["z"], ["y"], axis=1),
        ],
        i,
    )
    m["matmul_no_bias"] = build(
        [
            helper.make_node("GlobalAveragePool", ["f"], ["g"]),
            helper.make_node("Flatten", ["g"], ["p"]),
            helper.make_node("MatMul", ["p", "fc_wt"], ["y"]),
        ],
        [_init("fc_wt", FC_W.T)],
    )
    m["nhwc_keras_like"] = build(
        [
            helper.make_node("ReduceMean", ["f"], ["p"], axes=[1, 2], keepdims=0),
            helper.make_node("MatMul", ["p", "fc_wt"], ["mm"]),
            helper.make_node("Add", ["mm", "fc_b"], ["z"]),
            helper.make_node("Softmax", ["z"], ["y"], axis=-1),
        ],
        [_init("fc_wt", FC_W.T), _init("fc_b", FC_B)],
        nhwc=True,
    )
    # Sizes static shape inference cannot know (pads computed at run time, as EfficientNet's
    # "same" padding exports): the importer measures the map with one forward pass instead.
    n, i = gemm("p", transB=1)
    m["feature_size_unknown_to_shape_inference"] = build(
        [
            _const("pads0", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
            _const("one", np.array(1, np.int64)),
            helper.make_node("Mul", ["pads0", "one"], ["pads"]),
            helper.make_node("Pad", ["f", "pads"], ["fp"]),
            helper.make_node("GlobalAveragePool", ["fp"], ["g"]),
            helper.make_node("Flatten", ["g"], ["p"]),
            n,
        ],
        i,
    )
    return m


#: Feature-map size per pattern where it is not the backbone's H x W.
MAP_SIZE = {"feature_size_unknown_to_shape_inference": (H + 2, W + 2)}

#: Whether a pattern has a bias (the card's classifier_bias is then FC_B, else zeros).
NO_BIAS = {"matmul_no_bias"}


def refused() -> dict[str, tuple[onnx.ModelProto, str]]:
    """Heads ``gapcam import`` must refuse, with a fragment of the one-line message."""
    r: dict[str, tuple[onnx.ModelProto, str]] = {}
    r["mlp_after_pool"] = (
        build(
            [
                helper.make_node("GlobalAveragePool", ["f"], ["g"]),
                helper.make_node("Flatten", ["g"], ["p"]),
                helper.make_node("Gemm", ["p", "h_w"], ["h"], transB=1),
                helper.make_node("Relu", ["h"], ["hr"]),
                helper.make_node("Gemm", ["hr", "fc_w", "fc_b"], ["y"], transB=1),
            ],
            [_init("h_w", np.eye(K, dtype=np.float32)), _init("fc_w", FC_W), _init("fc_b", FC_B)],
        ),
        "Relu feeds the linear layer where global average pooling was expected",
    )
    r["max_pool"] = (
        build(
            [
                helper.make_node("GlobalMaxPool", ["f"], ["g"]),
                helper.make_node("Flatten", ["g"], ["p"]),
                helper.make_node("Gemm", ["p", "fc_w", "fc_b"], ["y"], transB=1),
            ],
            [_init("fc_w", FC_W), _init("fc_b", FC_B)],
        ),
        "GlobalMaxPool feeds the linear layer",
    )
    r["reducemean_over_channels"] = (
        build(
            [
                helper.make_node("ReduceMean", ["f"], ["g"], axes=[1, 3], keepdims=0),
                helper.make_node("MatMul", ["g", "m_w"], ["y"]),
            ],
            [_init("m_w", np.ones((H, C), np.float32))],
        ),
        "is not an average over H, W",
    )
    r["partial_average_pool"] = (
        build(
            [
                helper.make_node("AveragePool", ["f"], ["g"], kernel_shape=[2, 2], strides=[8, 8]),
                helper.make_node("Flatten", ["g"], ["p"]),
                helper.make_node("Gemm", ["p", "fc_w", "fc_b"], ["y"], transB=1),
            ],
            [_init("fc_w", FC_W), _init("fc_b", FC_B)],
        ),
        "is not a global average",
    )
    r["attention_weights_at_run_time"] = (
        build(
            [
                helper.make_node("GlobalAveragePool", ["f"], ["g"]),
                helper.make_node("Flatten", ["g"], ["p"]),
                helper.make_node("Gemm", ["p", "a_w"], ["q"], transB=1),
                helper.make_node("MatMul", ["p", "q"], ["y"]),
            ],
            [_init("a_w", np.eye(K, dtype=np.float32))],
            out_shape=(1, K),
        ),
        "weights are computed at run time",
    )
    r["no_linear_layer"] = (
        build(
            [
                helper.make_node("GlobalAveragePool", ["f"], ["g"]),
                helper.make_node("Flatten", ["g"], ["y"]),
            ],
            out_shape=(1, K),
        ),
        "not by a linear layer",
    )
    return r
