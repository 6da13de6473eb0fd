"""Comparison maths, and the fp16 conversion strongly typed TensorRT (11) needs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from engine_builder.compare import Thresholds, compare_outputs, pearson_rows
from engine_builder.errors import EngineBuilderError
from engine_builder.fp16_onnx import convert_to_fp16


def test_pearson_rows_handles_flat_maps():
    a = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    b = np.array([[2.0, 4.0, 6.0], [5.0, 5.0, 5.0], [1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    np.testing.assert_allclose(pearson_rows(a, b), [1.0, 1.0, 0.0, -1.0])


def test_compare_outputs_on_identical_and_perturbed_outputs():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(10, 3)).astype(np.float32)
    cam = rng.normal(size=(10, 3, 4, 4)).astype(np.float32)
    same = compare_outputs(logits, cam, logits, cam, targets=list(logits.argmax(1)))
    assert same.top1_agreement == 1.0 and same.max_logit_error == 0.0
    assert same.cam_correlation_mean == pytest.approx(1.0)
    assert same.reference_accuracy == 1.0 and same.accuracy_drop_points == 0.0
    assert same.failures(Thresholds(max_accuracy_drop=0.5)) == []
    swapped = logits.copy()
    swapped[0] = swapped[0][::-1] * 10  # changes the decision of one image
    comp = compare_outputs(logits, cam, swapped, -cam, targets=[None] * 10)
    assert comp.top1_agreement <= 0.9 and comp.cam_correlation_mean == pytest.approx(-1.0)
    assert comp.reference_accuracy is None and comp.accuracy_drop_points is None
    fails = comp.failures(Thresholds())
    assert any("agreement" in f for f in fails) and any("CAM" in f for f in fails)


def test_fp16_conversion_keeps_float32_io_and_outputs(shipped_model, shipped_chw):
    import onnxruntime as ort

    model = onnx.load(str(shipped_model))
    half = convert_to_fp16(model)
    assert all(v.type.tensor_type.elem_type == TensorProto.FLOAT for v in half.graph.input)
    assert all(v.type.tensor_type.elem_type == TensorProto.FLOAT for v in half.graph.output)
    assert all(i.data_type != TensorProto.FLOAT for i in half.graph.initializer)
    x = np.random.default_rng(0).normal(size=(2, *shipped_chw)).astype(np.float32)
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = ort.InferenceSession(half.SerializeToString(), providers=["CPUExecutionProvider"])
    for r, g in zip(ref.run(None, {"image": x}), got.run(None, {"image": x}), strict=True):
        assert g.dtype == np.float32
        assert np.abs(r - g).max() <= 2e-2 * max(1e-3, float(np.abs(r).max()))


def test_fp16_conversion_refuses_unknown_operators(shipped_model):
    model = onnx.load(str(shipped_model))
    model.graph.node[-1].op_type = "Resize"
    with pytest.raises(EngineBuilderError, match="Resize"):
        convert_to_fp16(model)
