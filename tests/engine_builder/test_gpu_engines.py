"""Real engines from the shipped model: fp16, int8 from Q/DQ, int8 from the entropy calibrator.

Skipped (with the reason) where TensorRT, pycuda or a CUDA GPU is missing; on a Jetson run
``pytest tests/engine_builder/test_gpu_engines.py tests/backends/test_tensorrt_backend.py``.
The int8 builds here verify on 48 images with looser thresholds than the defaults (a few frames
move agreement by whole percent); ``engine-builder selftest`` applies the defaults.
"""

from __future__ import annotations

import json

import pytest

from engine_builder.build import BuildRequest, build_engine
from engine_builder.compare import Thresholds
from engine_builder.ensure import ensure_engine
from engine_builder.errors import EngineBuilderError
from gapcam.backends.factory import tensorrt_unavailable_reason
from gapcam.backends.tensorrt_backend import metadata_path_for

GPU_REASON = tensorrt_unavailable_reason()
pytestmark = pytest.mark.skipif(GPU_REASON is not None, reason=str(GPU_REASON))
LOOSE = Thresholds(min_agreement=0.9, min_cam_correlation=0.5)


def _caps():
    from engine_builder import trt_api

    return trt_api.capabilities(trt_api.import_tensorrt())


def test_fp16_engine_builds_verifies_and_records_metadata(tmp_path, shipped_model, val_set):
    res = build_engine(
        BuildRequest(shipped_model, "fp16", tmp_path, verify_data=val_set.root, verify_images=32),
        say=print,
    )
    meta = json.loads(metadata_path_for(res.plan_path).read_text())
    assert res.verified and meta["verification"]["passed"]
    assert meta["precision"] == "fp16" and meta["gpu"]["compute_capability"]
    assert meta["io"][0]["name"] == "image"
    assert list(tmp_path.glob("timing.trt*.cache")), "timing cache must persist"
    again = build_engine(BuildRequest(shipped_model, "fp16", tmp_path, verify=False), say=print)
    assert again.metadata.builder["timing_cache_loaded_bytes"] > 0


def test_int8_from_qdq_model(tmp_path, qdq_model, shipped_model, val_set):
    res = build_engine(
        BuildRequest(
            qdq_model.model_path,
            "int8",
            tmp_path,
            verify_data=val_set.root,
            verify_images=32,
            thresholds=LOOSE,
            reference_onnx=shipped_model,
        ),
        say=print,
    )
    assert res.metadata.int8["method"] == "qdq"
    assert res.metadata.onnx.fp32_reference["sha256"]


def test_int8_entropy_calibrator_or_clear_refusal(tmp_path, shipped_model, calib_set, val_set):
    req = BuildRequest(
        shipped_model,
        "int8",
        tmp_path,
        calib=calib_set.manifest_path.parent,
        calib_cache=tmp_path / "device.cache",
        device_calibration=True,  # TensorRT calibrates from the images on this GPU
        verify_data=val_set.root,
        verify_images=32,
        thresholds=LOOSE,
    )
    if not _caps().entropy_calibrator:
        with pytest.raises(EngineBuilderError, match="quantise first"):
            build_engine(req, say=print)
        return
    res = build_engine(req, say=print)
    int8 = res.metadata.int8
    assert int8["scales"] == "device" and int8["calibration_batches"] > 0
    assert int8["calibration_set"]["set_hash"] == calib_set.hash
    from engine_builder.entropy_cache import read_cache

    assert read_cache(tmp_path / "device.cache").scales  # a cache trtexec can read
    # a second build takes the scales from that cache (no calibration batches)
    res2 = build_engine(
        BuildRequest(
            shipped_model,
            "int8",
            tmp_path / "again",
            calib_cache=tmp_path / "device.cache",
            verify=False,
        ),
        say=print,
    )
    assert res2.metadata.int8["scales"] == "cache (given)"


def test_cpu_computed_cache_builds(tmp_path, shipped_model, card, calib_set):
    if not _caps().entropy_calibrator:
        pytest.skip("TensorRT 11 has no IInt8EntropyCalibrator2")
    from engine_builder import trt_api
    from engine_builder.entropy_cache import scales_from_amax, write_cache
    from engine_builder.quantize import activation_ranges

    amax = activation_ranges(shipped_model, card, calib_set, method="entropy", percentile=99.99)
    code = trt_api.calibration_cache_version_code(_caps().version)
    cache = write_cache(tmp_path / "cpu.cache", scales_from_amax(amax), code)
    res = build_engine(
        BuildRequest(shipped_model, "int8", tmp_path, calib_cache=cache, verify=False), say=print
    )
    assert res.metadata.int8["calibration_cache"]["path"] == str(cache)


def test_bench_inspect_and_ensure(tmp_path, shipped_model, capsys):
    from engine_builder.cli import main

    first = ensure_engine(shipped_model, "fp16", tmp_path, say=print)
    assert first.built
    assert not ensure_engine(shipped_model, "fp16", tmp_path, say=print).built
    assert main(["bench", str(first.plan_path), "--iterations", "20"]) == 0
    assert main(["inspect", str(first.plan_path), "--layers"]) == 0
    out = capsys.readouterr().out
    assert "p99 ms" in out and "compatible" in out and "layers" in out
