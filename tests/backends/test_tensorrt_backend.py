"""TensorRT backend. CPU part: loading refuses missing/foreign engines with one line. GPU part
(skipped without TensorRT, pycuda and a CUDA GPU - run it on the Jetson): build an fp16 engine from
the shipped model, then check outputs against ONNX Runtime, dynamic batch, threads and refusals."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from gapcam.backends.factory import tensorrt_unavailable_reason
from gapcam.backends.tensorrt_backend import TensorRTBackend, metadata_path_for
from gapcam.errors import GapcamError

GPU_REASON = tensorrt_unavailable_reason()
gpu = pytest.mark.skipif(GPU_REASON is not None, reason=str(GPU_REASON))


# ---------------------------------------------------------------------------- CPU
def test_missing_engine_is_a_one_line_error(tmp_path):
    with pytest.raises(GapcamError) as err:
        TensorRTBackend(tmp_path / "none.plan")
    assert "engine not found" in str(err.value) and "\n" not in str(err.value)


def test_engine_without_metadata_is_refused(tmp_path):
    plan = tmp_path / "x.plan"
    plan.write_bytes(b"\0" * 16)
    with pytest.raises(GapcamError, match="metadata not found"):
        TensorRTBackend(plan)


# ---------------------------------------------------------------------------- GPU
@pytest.fixture(scope="module")
def fp16_engine(tmp_path_factory, shipped_model) -> Path:
    from engine_builder.build import BuildRequest, build_engine

    out = tmp_path_factory.mktemp("engines")
    data = _image_folder(tmp_path_factory.mktemp("imgs"))
    result = build_engine(
        BuildRequest(shipped_model, "fp16", out, verify_data=data, verify_images=32),
        say=lambda _m: None,
    )
    return result.plan_path


def _image_folder(root: Path, n: int = 32) -> Path:
    import cv2

    rng = np.random.default_rng(0)
    for i in range(n):
        label = ("blocked", "free", "undefined")[i % 3]
        (root / label).mkdir(exist_ok=True)
        img = rng.integers(0, 255, (96, 160, 3), dtype=np.uint8)
        cv2.imwrite(str(root / label / f"{i:03d}.png"), cv2.GaussianBlur(img, (0, 0), 3))
    return root


@gpu
def test_outputs_match_onnxruntime(fp16_engine, shipped_model, shipped_chw):
    from engine_builder.compare import compare_outputs
    from gapcam.backends.onnxruntime_backend import OnnxRuntimeBackend

    ref = OnnxRuntimeBackend(shipped_model)
    trt = TensorRTBackend(fp16_engine)
    try:
        x = np.random.default_rng(1).normal(size=(4, *shipped_chw)).astype(np.float32)
        a, b = ref.infer(x), trt.infer(x)
        assert b.logits.shape == a.logits.shape and b.cam.shape == a.cam.shape
        assert b.logits.dtype == np.float32
        comp = compare_outputs(a.logits, a.cam, b.logits, b.cam)
        assert comp.max_logit_error < 0.05 * max(1.0, float(np.abs(a.logits).max()))
        assert trt.precision == "fp16" and trt.name == "tensorrt"
        assert "TensorRT" in trt.describe()
    finally:
        trt.close()


@gpu
def test_dynamic_batch_and_chunking_beyond_the_profile(fp16_engine, shipped_chw):
    trt = TensorRTBackend(fp16_engine)
    try:
        rng = np.random.default_rng(2)
        x = rng.normal(size=(trt.max_batch * 2 + 1, *shipped_chw)).astype(np.float32)
        whole = trt.infer(x)
        assert whole.logits.shape[0] == x.shape[0]
        for n in (1, 2, 3):
            part = trt.infer(x[:n])
            np.testing.assert_allclose(part.logits, whole.logits[:n], rtol=1e-2, atol=1e-3)
        with pytest.raises(GapcamError, match="does not match the engine"):
            trt.infer(x[:, :, :64])
    finally:
        trt.close()


@gpu
def test_calls_from_other_threads_use_the_primary_context(fp16_engine, shipped_chw):
    """A ROS executor calls infer from worker threads that never created a CUDA context."""
    trt = TensorRTBackend(fp16_engine)
    x = np.random.default_rng(3).normal(size=(2, *shipped_chw)).astype(np.float32)
    expected = trt.infer(x).logits
    results, errors = [], []

    def worker():
        try:
            for _ in range(10):
                results.append(trt.infer(x).logits)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert len(results) == 40
        for r in results:
            np.testing.assert_allclose(r, expected, rtol=1e-5, atol=1e-6)
    finally:
        trt.close()


@gpu
def test_foreign_metadata_is_refused_with_a_rebuild_command(fp16_engine, tmp_path):
    import shutil

    plan = tmp_path / fp16_engine.name
    shutil.copy(fp16_engine, plan)
    meta = json.loads(metadata_path_for(fp16_engine).read_text())
    meta["tensorrt"]["version"] = "8.5.2.2"
    metadata_path_for(plan).write_text(json.dumps(meta))
    with pytest.raises(GapcamError) as err:
        TensorRTBackend(plan)
    msg = str(err.value)
    assert (
        "built with TensorRT 8.5.2.2" in msg and "engine-builder build" in msg and "\n" not in msg
    )


@gpu
def test_factory_auto_picks_tensorrt_for_a_plan(fp16_engine):
    from gapcam.backends import load_backend

    backend = load_backend(fp16_engine, "auto")
    try:
        assert backend.name == "tensorrt"
    finally:
        backend.close()
