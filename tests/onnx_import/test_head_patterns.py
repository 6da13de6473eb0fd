"""``gapcam import`` on generated graphs: every accepted head pattern is fused exactly, every
other head is refused in one line naming what was found."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx_graphs as g
import onnxruntime as ort
import pytest

from gapcam.errors import GapcamError
from gapcam.onnx_import import find_head, import_model
from gapcam.onnx_import.head import HeadNotFoundError
from gapcam.pipeline import Pipeline

ACCEPTED = g.accepted()
REFUSED = g.refused()
CLASSES = ["a", "b", "c"]


def _import(tmp_path, model: onnx.ModelProto, name: str = "m", **kw):
    src = tmp_path / f"{name}.src.onnx"
    onnx.save(model, str(src))
    kw.setdefault("mean", (0.5, 0.5, 0.5))
    kw.setdefault("std", (0.25, 0.25, 0.25))
    return import_model(src, tmp_path / "out" / f"{name}.onnx", CLASSES, **kw)


@pytest.mark.parametrize("pattern", sorted(ACCEPTED))
def test_every_head_pattern_is_fused_exactly(tmp_path, pattern):
    model = ACCEPTED[pattern]
    res = _import(tmp_path, model, pattern)
    card = res.card
    bias = np.zeros(g.C) if pattern in g.NO_BIAS else g.FC_B
    np.testing.assert_allclose(card.classifier_bias, bias, rtol=1e-6)
    h, w = g.MAP_SIZE.get(pattern, (g.H, g.W))
    assert (card.output.cam_height, card.output.cam_width) == (h, w)
    assert card.output.feature_channels == g.K
    assert card.opset == model.opset_import[0].version  # opset kept (17 stays 17)
    assert card.input.layout == ("NHWC" if pattern.startswith("nhwc") else "NCHW")
    # The written model, on a batch of 3 (the source had a static batch of 1).
    sess = ort.InferenceSession(str(res.onnx_path), providers=["CPUExecutionProvider"])
    shape = (3, g.H, g.W, 3) if card.input.layout == "NHWC" else (3, 3, g.H, g.W)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    logits, cam, features = sess.run(["logits", "cam", "features"], {"x": x})
    assert cam.shape == (3, g.C, h, w) and features.shape == (3, g.K, h, w)
    # CAM = the linear weights applied to the pooled map, pixel by pixel; logits = its mean + b.
    ref_cam = np.einsum("ck,nkhw->nchw", g.FC_W, features)
    np.testing.assert_allclose(cam, ref_cam, atol=1e-5)
    np.testing.assert_allclose(logits, cam.mean(axis=(2, 3)) + bias, atol=1e-5)
    # And the logits are the source's (pre-softmax when it ended in a softmax).
    src = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    src_out = np.concatenate([src.run(None, {"x": x[i : i + 1]})[0] for i in range(3)])
    if "softmax" in pattern or pattern.startswith("nhwc"):
        e = np.exp(logits - logits.max(1, keepdims=True))
        np.testing.assert_allclose(e / e.sum(1, keepdims=True), src_out, atol=1e-6)
    else:
        np.testing.assert_allclose(logits, src_out, atol=1e-6)


def test_imported_model_runs_in_the_pipeline_with_its_card(tmp_path):
    res = _import(tmp_path, ACCEPTED["nhwc_keras_like"], "nhwc", color_order="BGR")
    pipe = Pipeline.from_model(res.onnx_path)
    r = pipe.analyze(np.full((30, 40, 3), 120, np.uint8))
    assert r.classes == tuple(CLASSES) and r.cam.shape == (g.H, g.W)
    assert abs(float(r.probabilities.sum()) - 1.0) < 1e-5
    data = json.loads(res.onnx_path.with_suffix(".json").read_text())
    assert data["input"]["layout"] == "NHWC" and data["input"]["color_order"] == "BGR"
    assert data["fallback_class"] is None


@pytest.mark.parametrize("pattern", sorted(REFUSED))
def test_other_heads_are_refused_in_one_line(tmp_path, pattern):
    model, fragment = REFUSED[pattern]
    with pytest.raises(HeadNotFoundError) as exc:
        find_head(model)
    msg = str(exc.value)
    assert fragment in msg and "\n" not in msg and "found" in msg
    with pytest.raises(GapcamError, match="no GAP \\+ linear head"):
        _import(tmp_path, model, pattern)
    assert not (tmp_path / "out" / f"{pattern}.onnx").exists()
    assert not (tmp_path / "out" / f"{pattern}.json").exists()


def test_input_problems_are_refused_in_one_line(tmp_path):
    one_channel = g.build(*g.gap_gemm_head(), in_shape=[1, 1, g.H, g.W], check=False)
    with pytest.raises(GapcamError, match="1 channels .* 3-channel colour images"):
        _import(tmp_path, one_channel, "gray")
    dynamic = g.build(*g.gap_gemm_head(), in_shape=[1, 3, "h", "w"])
    with pytest.raises(GapcamError, match="no fixed height/width"):
        _import(tmp_path, dynamic, "dyn")


def test_wrong_class_count_and_bad_fallback_write_nothing(tmp_path):
    model = ACCEPTED["gap_flatten_gemm"]
    src = tmp_path / "m.onnx"
    onnx.save(model, str(src))
    out = tmp_path / "o" / "m.onnx"
    with pytest.raises(GapcamError, match="3 classes but 2 names"):
        import_model(src, out, ["a", "b"], mean=(0, 0, 0), std=(1, 1, 1))
    with pytest.raises(GapcamError, match="fallback_class 'z' is not one of the classes"):
        import_model(src, out, CLASSES, mean=(0, 0, 0), std=(1, 1, 1), fallback_class="z")
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert [p.name for p in out.parent.iterdir()] == []  # no temporary leftovers


def test_existing_tensors_named_like_gapcam_outputs_are_renamed(tmp_path):
    """A source whose internal tensors are called 'cam'/'features' keeps working."""
    model = ACCEPTED["gap_flatten_gemm"]
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for node in m.graph.node:
        node.input[:] = ["features" if x == "g" else ("cam" if x == "p" else x) for x in node.input]
        node.output[:] = [
            "features" if x == "g" else ("cam" if x == "p" else x) for x in node.output
        ]
    res = _import(tmp_path, m, "names")
    sess = ort.InferenceSession(str(res.onnx_path), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["logits", "cam", "features"]
    assert sess.get_outputs()[1].shape[1:] == [g.C, g.H, g.W]
