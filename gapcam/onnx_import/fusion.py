"""Rewrite a graph with a found :class:`~gapcam.onnx_import.head.Head` into gapcam's contract.

* ``cam``: a bias-free 1x1 ``Conv`` of the pooled feature map with the linear layer's weights
  (alpha folded in), so ``mean_xy(cam_c) + b_c == logits_c``. An NHWC feature map is multiplied
  by the weights (``MatMul``) and transposed to ``N x C x h x w``.
* ``features``: the pooled feature map itself (NCHW) for Eigen-CAM, unless left out.
* ``logits``: the pre-softmax tensor; a trailing softmax is dropped (gapcam applies its own).
* The batch axis of the input and outputs becomes dynamic; Reshape/Flatten of the head that
  baked in a batch of 1 are made batch-free. Everything before the head is left as it is, so
  the logits stay identical, and the opset is kept.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from gapcam.onnx_import.head import Head

LOGITS, CAM, FEATURES = "logits", "cam", "features"


def _rename_tensor(model: onnx.ModelProto, old: str, new: str) -> None:
    graph = model.graph
    for node in graph.node:
        node.input[:] = [new if x == old else x for x in node.input]
        node.output[:] = [new if x == old else x for x in node.output]
    for coll in (graph.input, graph.output, graph.value_info, graph.initializer):
        for item in coll:
            if item.name == old:
                item.name = new


def _all_names(model: onnx.ModelProto) -> set[str]:
    g = model.graph
    names = {i.name for i in g.input} | {i.name for i in g.initializer}
    for node in g.node:
        names.update(node.output)
        names.update(node.input)
    return names


def _free(model: onnx.ModelProto, name: str, keep: str | None = None) -> None:
    """Rename any existing tensor called ``name`` (except ``keep``) out of the way."""
    if name == keep or name not in _all_names(model):
        return
    taken = _all_names(model)
    new, i = f"{name}__orig", 1
    while new in taken:
        new, i = f"{name}__orig{i}", i + 1
    _rename_tensor(model, name, new)


def _unique(model: onnx.ModelProto, base: str) -> str:
    taken = _all_names(model)
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    return name


def _prune(model: onnx.ModelProto) -> None:
    """Drop nodes and initializers no graph output depends on (e.g. the removed softmax)."""
    graph = model.graph
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(x for x in node.input if x)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)


def _tensor_info(name: str, dims: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def fuse_cam(model: onnx.ModelProto, head: Head, *, with_features: bool = True) -> onnx.ModelProto:
    """A copy of ``model`` with outputs ``logits``, ``cam`` (and ``features``)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    logits_src, features_src = head.logits, head.features

    # The head's output (and its softmax) go; the names gapcam reserves are freed.
    del graph.output[:]
    for name in (LOGITS, CAM, FEATURES):
        _free(out, name, keep=logits_src if name == LOGITS else None)
    logits_src = LOGITS if head.logits == LOGITS else _resolve_renamed(out, logits_src)
    features_src = _resolve_renamed(out, head.features)

    _batch_free_reshapes(out, head)

    c, k = head.num_classes, head.channels
    h, w = head.cam_height, head.cam_width
    nodes = []
    if logits_src != LOGITS:
        nodes.append(helper.make_node("Identity", [logits_src], [LOGITS], name="gapcam_logits"))
    if head.feature_layout == "NCHW":
        wname = _unique(out, "gapcam_cam_weight")
        graph.initializer.append(
            numpy_helper.from_array(head.weight.T.reshape(c, k, 1, 1).copy(), wname)
        )
        nodes.append(
            helper.make_node(
                "Conv", [features_src, wname], [CAM], name="gapcam_cam", kernel_shape=[1, 1]
            )
        )
        if with_features:
            nodes.append(
                helper.make_node("Identity", [features_src], [FEATURES], name="gapcam_features")
            )
    else:  # NHWC feature map: (N, h, w, K) @ (K, C) -> (N, h, w, C) -> (N, C, h, w)
        wname = _unique(out, "gapcam_cam_weight")
        graph.initializer.append(numpy_helper.from_array(head.weight.copy(), wname))
        nhwc = _unique(out, "gapcam_cam_nhwc")
        nodes.append(
            helper.make_node("MatMul", [features_src, wname], [nhwc], name="gapcam_cam_mm")
        )
        nodes.append(
            helper.make_node("Transpose", [nhwc], [CAM], name="gapcam_cam", perm=[0, 3, 1, 2])
        )
        if with_features:
            nodes.append(
                helper.make_node(
                    "Transpose",
                    [features_src],
                    [FEATURES],
                    name="gapcam_features",
                    perm=[0, 3, 1, 2],
                )
            )
    graph.node.extend(nodes)
    graph.output.extend(
        [_tensor_info(LOGITS, ["batch", c]), _tensor_info(CAM, ["batch", c, h, w])]
        + ([_tensor_info(FEATURES, ["batch", k, h, w])] if with_features else [])
    )
    _prune(out)
    for inp in graph.input:
        if inp.name in {i.name for i in graph.initializer}:
            continue
        dims = inp.type.tensor_type.shape.dim
        if len(dims):
            dims[0].Clear()
            dims[0].dim_param = "batch"
    del graph.value_info[:]  # stale static-batch shapes; ORT and the checker re-infer them
    return out


def _resolve_renamed(model: onnx.ModelProto, name: str) -> str:
    """The current name of a tensor that :func:`_free` may have renamed."""
    if name in (CAM, FEATURES, LOGITS):
        names = _all_names(model)
        if name not in names:
            for cand in (f"{name}__orig", *(f"{name}__orig{i}" for i in range(1, 10))):
                if cand in names:
                    return cand
    return name


def _batch_free_reshapes(model: onnx.ModelProto, head: Head) -> None:
    """Reshape/Flatten in the head flatten (N, K, 1, 1) -> (N, K) whatever N is."""
    wanted = set(head.reshapes)
    for node in model.graph.node:
        if (node.name or node.output[0]) not in wanted:
            continue
        if node.op_type == "Flatten":
            for a in node.attribute:
                if a.name == "axis":
                    a.i = 1
        elif node.op_type == "Reshape":
            shape_name = _unique(model, "gapcam_head_shape")
            model.graph.initializer.append(
                numpy_helper.from_array(np.asarray([-1, head.channels], dtype=np.int64), shape_name)
            )
            node.input[1] = shape_name
