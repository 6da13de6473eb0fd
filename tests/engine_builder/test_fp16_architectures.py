"""The TensorRT-11 fp16 conversion on the operators of common GAP classifiers (ResNet,
MobileNetV2 with ReLU6/Clip and a ReduceMean head, MobileNetV3 with HardSwish and
squeeze-excite), exported by PyTorch and brought in with ``gapcam import``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from engine_builder.fp16_onnx import convert_to_fp16
from gapcam.onnx_import import import_model

sys.path.insert(0, str(Path(__file__).parents[1] / "onnx_import"))
from import_models import (  # noqa: E402
    MobileNetV2Like,
    MobileNetV3Like,
    ResNet18Like,
    export_standard,
    randomize_batchnorm,
)


@pytest.mark.parametrize("arch", [ResNet18Like, MobileNetV2Like, MobileNetV3Like])
def test_fp16_conversion_of_imported_architectures(tmp_path, arch):
    net = randomize_batchnorm(arch(4))
    src = export_standard(net, tmp_path / "src.onnx", 64)
    res = import_model(src, tmp_path / "m.onnx", list("abcd"), mean=(0.5,) * 3, std=(0.5,) * 3)
    model = onnx.load(str(res.onnx_path))
    ops = {n.op_type for n in model.graph.node}
    half = convert_to_fp16(model)
    assert all(i.data_type != TensorProto.FLOAT for i in half.graph.initializer)
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = ort.InferenceSession(half.SerializeToString(), providers=["CPUExecutionProvider"])
    for r, g in zip(ref.run(None, {"input": x}), got.run(None, {"input": x}), strict=True):
        assert g.dtype == np.float32
        assert np.abs(r - g).max() <= 3e-2 * max(1e-3, float(np.abs(r).max()))
    if arch is MobileNetV2Like:
        assert {"Clip", "ReduceMean"} <= ops
    if arch is MobileNetV3Like:
        assert {"HardSwish", "HardSigmoid", "Mul"} <= ops


def test_constants_and_casts_become_fp16():
    graph = helper.make_graph(
        [
            helper.make_node("Constant", [], ["lo"], value_float=0.0),
            helper.make_node(
                "Constant",
                [],
                ["hi"],
                value=onnx.numpy_helper.from_array(np.array(6.0, np.float32)),
            ),
            helper.make_node("Clip", ["x", "lo", "hi"], ["c"]),
            helper.make_node("Cast", ["c"], ["y"], to=TensorProto.FLOAT),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    half = convert_to_fp16(model)
    sess = ort.InferenceSession(half.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.array([[-1.0, 2.0, 7.0, 3.5]], np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], [[0.0, 2.0, 6.0, 3.5]])
