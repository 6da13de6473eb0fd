"""Q/DQ quantisation of the real shipped model, its TensorRT graph rules and its report."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from engine_builder.compare import Thresholds
from engine_builder.errors import VerificationFailedError
from engine_builder.qdq_rules import check_qdq_model, is_qdq_model
from engine_builder.quantize import quantize_model, tensorrt_qdq_settings
from gapcam.model_card import ModelCard, card_path_for, sha256_file


@pytest.fixture(scope="module")
def qdq(qdq_model):
    return onnx.load(str(qdq_model.model_path))


def test_settings_are_the_ones_tensorrt_accepts():
    from onnxruntime.quantization import QuantFormat, QuantType

    s = tensorrt_qdq_settings()
    assert s["quant_format"] == QuantFormat.QDQ
    assert s["activation_type"] == s["weight_type"] == QuantType.QInt8
    assert s["per_channel"] is True and s["reduce_range"] is False
    assert s["extra_options"]["ActivationSymmetric"] and s["extra_options"]["WeightSymmetric"]
    assert s["extra_options"]["QuantizeBias"] is False


def test_quantised_shipped_model_follows_the_rules(qdq):
    assert is_qdq_model(qdq)
    assert check_qdq_model(qdq) == []
    assert max(i.version for i in qdq.opset_import if i.domain in ("", "ai.onnx")) <= 17
    inits = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}
    dq_weights = [
        n for n in qdq.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
    ]
    assert dq_weights, "weights must be quantised"
    for n in dq_weights:
        assert inits[n.input[0]].dtype == np.int8  # no int32 bias DequantizeLinear
        assert not inits[n.input[2]].any()  # zero points 0
    # every Conv runs on Q/DQ inputs; outputs (logits, cam) stay float
    producers = {o: n.op_type for n in qdq.graph.node for o in n.output}
    for n in qdq.graph.node:
        if n.op_type == "Conv":
            assert producers.get(n.input[0]) == "DequantizeLinear", n.name
            assert producers.get(n.input[1]) == "DequantizeLinear", n.name
    assert producers["logits"] == "Gemm" and producers["cam"] == "Conv"


def _mutated(model: onnx.ModelProto, fn) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    fn(m)
    return m


def _first_weight_dq(m):
    inits = {i.name for i in m.graph.initializer}
    return next(n for n in m.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits)


def _replace_init(m, name, array):
    for i in m.graph.initializer:
        if i.name == name:
            i.CopyFrom(numpy_helper.from_array(array, name))


def test_rules_catch_nonzero_zero_points(qdq):
    def fn(m):
        dq = next(n for n in m.graph.node if n.op_type == "QuantizeLinear")
        _replace_init(m, dq.input[2], np.array(3, np.int8))

    problems = check_qdq_model(_mutated(qdq, fn))
    assert any("non-zero zero point" in p for p in problems)


def test_rules_catch_uint8_and_missing_zero_points(qdq):
    def fn(m):
        q = next(n for n in m.graph.node if n.op_type == "QuantizeLinear")
        del q.input[2]

    assert any("no zero point" in p for p in check_qdq_model(_mutated(qdq, fn)))


def test_rules_catch_per_tensor_and_wrong_axis_weight_scales(qdq):
    def per_tensor(m):
        dq = _first_weight_dq(m)
        _replace_init(m, dq.input[1], np.array(0.01, np.float32))
        _replace_init(m, dq.input[2], np.array(0, np.int8))

    assert any("per-tensor weight scale" in p for p in check_qdq_model(_mutated(qdq, per_tensor)))

    def wrong_axis(m):
        dq = _first_weight_dq(m)
        for a in dq.attribute:
            if a.name == "axis":
                a.i = 1

    assert any(
        "per-channel scales on axis 1" in p for p in check_qdq_model(_mutated(qdq, wrong_axis))
    )


def test_rules_catch_int32_bias_dequantize_and_new_opsets(qdq):
    def int32_bias(m):
        conv = next(n for n in m.graph.node if n.op_type == "Conv" and len(n.input) > 2)
        bias = conv.input[2]
        m.graph.initializer.extend(
            [
                numpy_helper.from_array(np.zeros(4, np.int32), "b_q"),
                numpy_helper.from_array(np.array(0.1, np.float32), "b_s"),
                numpy_helper.from_array(np.array(0, np.int32), "b_z"),
            ]
        )
        m.graph.node.insert(
            0, helper.make_node("DequantizeLinear", ["b_q", "b_s", "b_z"], [bias + "_dq"])
        )
        conv.input[2] = bias + "_dq"

    assert any("int32 bias" in p for p in check_qdq_model(_mutated(qdq, int32_bias)))

    def opset18(m):
        for imp in m.opset_import:
            if imp.domain == "":
                imp.version = 18

    assert any("opset 18" in p for p in check_qdq_model(_mutated(qdq, opset18)))
    assert TensorProto.INT32  # keep import used


def test_report_and_card_of_the_quantised_model(qdq_model, shipped_model, card, calib_set, val_set):
    report = qdq_model.report
    comp = report["comparison"]
    assert comp["images"] == len(val_set.entries) == 48
    assert 0.0 <= comp["top1_agreement"] <= 1.0 and -1.0 <= comp["cam_correlation_mean"] <= 1.0
    assert comp["labelled"] == 48 and comp["accuracy_drop_points"] is not None
    assert report["evaluated_with"].startswith("onnxruntime, Q/DQ at ORT_ENABLE_BASIC")
    assert report["calibration_set"]["set_hash"] == calib_set.hash
    assert json.loads(qdq_model.model_path.with_suffix(".report.json").read_text()) == report
    qcard = ModelCard.load(card_path_for(qdq_model.model_path))
    assert qcard.precision == "int8" and qcard.classes == card.classes
    assert qcard.onnx_sha256 == sha256_file(qdq_model.model_path)
    quant = qcard.provenance["quantization"]
    assert quant["fp32_onnx_sha256"] == card.onnx_sha256 and quant["method"] == "entropy"
    assert (qdq_model.model_path.parent / quant["fp32_onnx"]).resolve() == shipped_model.resolve()


def test_report_metrics_agree_with_an_independent_run(qdq_model, shipped_model, val_set, card):
    """The report's top-1 agreement is what ONNX Runtime at basic level computes on that data."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    q = ort.InferenceSession(str(qdq_model.model_path), so, providers=["CPUExecutionProvider"])
    f = ort.InferenceSession(str(shipped_model), providers=["CPUExecutionProvider"])
    x = np.concatenate(list(val_set.batches(card.input, 16)))
    agree = (
        q.run(["logits"], {"image": x})[0].argmax(1) == f.run(["logits"], {"image": x})[0].argmax(1)
    ).mean()
    assert qdq_model.report["comparison"]["top1_agreement"] == pytest.approx(agree)


def test_failing_thresholds_publish_nothing(tmp_path, shipped_model, card, calib_set):
    out = tmp_path / "m.int8.qdq.onnx"
    with pytest.raises(VerificationFailedError, match="below thresholds") as err:
        quantize_model(
            shipped_model,
            card,
            calib_set.subset(16),
            out,
            validation=calib_set.subset(8),
            method="percentile",
            thresholds=Thresholds(min_agreement=1.01),
            say=lambda _m: None,
        )
    assert "\n" not in str(err.value)
    assert not out.exists() and not card_path_for(out).exists()
    assert out.with_suffix(".report.json").is_file()  # the report says why


def test_float_head_keeps_logits_and_cam_unquantised(tmp_path, shipped_model, card, calib_set):
    out = tmp_path / "h.int8.qdq.onnx"
    res = quantize_model(
        shipped_model,
        card,
        calib_set.subset(16),
        out,
        validation=calib_set.subset(8),
        head="float",
        force=True,
        say=lambda _m: None,
    )
    model = onnx.load(str(out))
    assert check_qdq_model(model) == []
    producers = {o: n for n in model.graph.node for o in n.output}
    for name in ("logits", "cam"):
        node = producers[name]
        assert all(
            producers[i].op_type != "DequantizeLinear" for i in node.input if i in producers
        ), name
    assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)  # the backbone is int8
    assert res.card.provenance["quantization"]["head"] == "float"
