"""Read-only helpers over an ONNX graph: who produces a tensor, its constant value, its shape."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


class GraphIndex:
    """Producers, consumers, initializers and inferred shapes of one graph."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        graph = model.graph
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for out in node.output:
                if out:
                    self.producer[out] = node
            for inp in node.input:
                if inp:
                    self.consumers.setdefault(inp, []).append(node)
        self.initializers = {i.name: i for i in graph.initializer}
        self.shapes: dict[str, list[int | str | None]] = {}
        try:
            inferred = onnx.shape_inference.infer_shapes(model)
        except Exception:  # noqa: BLE001 - shape inference is best effort; missing shapes refuse later
            inferred = model
        for vi in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output):
            t = vi.type.tensor_type
            if t.HasField("shape"):
                self.shapes[vi.name] = [
                    d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                    for d in t.shape.dim
                ]

    def constant(self, name: str) -> np.ndarray | None:
        """The value of ``name`` if it is an initializer or a ``Constant`` node's output."""
        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        node = self.producer.get(name)
        if node is None or node.op_type != "Constant":
            return None
        for a in node.attribute:
            if a.name == "value":
                return numpy_helper.to_array(a.t)
            if a.name == "value_float":
                return np.asarray(a.f, np.float32)
            if a.name == "value_floats":
                return np.asarray(list(a.floats), np.float32)
            if a.name == "value_int":
                return np.asarray(a.i, np.int64)
            if a.name == "value_ints":
                return np.asarray(list(a.ints), np.int64)
        return None

    def shape(self, name: str) -> list[int | str | None] | None:
        return self.shapes.get(name)


def attr(node: onnx.NodeProto, name: str, default=None):
    """An attribute's Python value (``default`` when the node does not set it)."""
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def opset_version(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return 0


def probe_shape(model: onnx.ModelProto, tensor: str) -> list[int] | None:
    """The shape of ``tensor`` measured by running the graph once on zeros (ONNX Runtime).

    Static shape inference loses sizes in some exports (computed ``Pad`` amounts in
    EfficientNet's "same" padding, for instance); one forward pass at the graph's fixed input
    size gives them exactly. ``None`` when the input size is not fixed or the run fails.
    """
    import onnxruntime as ort

    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        return None
    dims = [
        d.dim_value if d.HasField("dim_value") else 0 for d in inputs[0].type.tensor_type.shape.dim
    ]
    if len(dims) < 2 or any(d <= 0 for d in dims[1:]):
        return None
    dims[0] = dims[0] or 1
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    probe.graph.output.append(onnx.ValueInfoProto(name=tensor))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(
            probe.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
        out = sess.run([tensor], {inputs[0].name: np.zeros(dims, np.float32)})[0]
    except Exception:  # noqa: BLE001 - a probe that fails leaves the refusal to the caller
        return None
    return list(out.shape)
