"""The shipped ONNX: graph contract, opset, dynamic batch and the GAP identity."""

from __future__ import annotations

import numpy as np
import onnx

from gapcam.backends.onnxruntime_backend import OnnxRuntimeBackend
from gapcam.cam import gap_identity_error
from gapcam.preprocess import preprocess


def test_graph_is_plain_conv_gap_gemm_with_cam_as_1x1_conv(shipped_model):
    model = onnx.load(str(shipped_model))
    onnx.checker.check_model(model)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) <= 17
    ops = {n.op_type for n in model.graph.node}
    assert "GlobalAveragePool" in ops and "Gemm" in ops
    assert not ops & {"Einsum", "MatMul"}, "CAM must be a 1x1 Conv (TensorRT-friendly)"
    outputs = {o.name for o in model.graph.output}
    assert {"logits", "cam"} <= outputs


def test_gap_identity_holds_on_real_images_and_batches(shipped_model, scene_image):
    backend = OnnxRuntimeBackend(shipped_model)
    images = [scene_image, scene_image[:, ::-1], np.zeros((480, 640, 3), np.uint8)]
    batch = preprocess(images, backend.card.input)
    out = backend.infer(batch)
    assert out.logits.shape == (3, len(backend.card.classes))
    assert out.cam.shape[2:] == (backend.card.output.cam_height, backend.card.output.cam_width)
    err = gap_identity_error(out.cam, out.logits, np.asarray(backend.card.classifier_bias))
    assert err < 1e-3
    # Dynamic batch: one-by-one equals batched.
    single = backend.infer(batch[1:2])
    np.testing.assert_allclose(single.logits[0], out.logits[1], atol=1e-4)
