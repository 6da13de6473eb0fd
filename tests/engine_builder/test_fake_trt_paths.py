"""Build -> verify -> publish -> run, per TensorRT version, against a fake TensorRT/pycuda on CPU.

The fake (fake_tensorrt.py) has only each version's API and runs the "engine" with ONNX Runtime,
so these tests exercise our orchestration and version branches (flags before 11, fp16 graph
conversion and strongly typed networks on 11, calibrator refusal on 11, progress monitor from
10), the metadata, the atomic publish, refusals, and the backend's context handling from
several threads. They say nothing about TensorRT's numerics: test_gpu_engines.py does, on a Jetson.
"""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import onnx
import pytest
from fake_tensorrt import PLAN_MAGIC, install, plan_flags

from engine_builder.build import BuildRequest, build_engine
from engine_builder.compare import Thresholds, compare_outputs
from engine_builder.errors import EngineBuilderError, VerificationFailedError
from gapcam.backends.onnxruntime_backend import OnnxRuntimeBackend
from gapcam.backends.tensorrt_backend import TensorRTBackend, metadata_path_for
from gapcam.errors import GapcamError
from gapcam.model_card import ModelCard, card_path_for

VERSIONS = ["8.6.1.6", "10.3.0.30", "10.13.3.9", "11.4.0.106"]
LOOSE = Thresholds(min_agreement=0.0, min_cam_correlation=-1.0)


def quiet(_m: str) -> None:
    pass


@pytest.fixture(params=VERSIONS)
def fake(request, monkeypatch):
    return install(monkeypatch, request.param)


def _major(trt) -> int:
    return int(trt.__version__.split(".")[0])


def test_fp16_build_publish_and_run(fake, tmp_path, shipped_model, val_set, shipped_chw):
    trt, cuda = fake
    messages = []
    res = build_engine(
        BuildRequest(shipped_model, "fp16", tmp_path, verify_data=val_set.root, verify_images=12),
        say=messages.append,
    )
    plan = res.plan_path
    assert plan.name == "lane_change.fp16.plan" and plan.read_bytes().startswith(PLAN_MAGIC)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    meta = json.loads(metadata_path_for(plan).read_text())
    assert meta["tensorrt"]["version"] == trt.__version__
    assert meta["verification"]["passed"] and meta["verification"]["comparison"]["images"] == 12
    assert meta["build"]["command"].startswith("engine-builder build")
    flags = plan_flags(plan)
    if _major(trt) < 11:
        assert flags["flags"] == [int(trt.BuilderFlag.FP16)] and not flags["strongly_typed"]
    else:
        assert (
            flags["flags"] == [] and flags["strongly_typed"] and meta["tensorrt"]["strongly_typed"]
        )
        embedded = onnx.load_from_string(plan.read_bytes().split(b"\n", 2)[2])
        assert any(n.op_type == "Cast" for n in embedded.graph.node)  # fp16 graph, fp32 IO
    if _major(trt) >= 10:
        assert any("Building engine" in m for m in messages)  # IProgressMonitor output
    assert any(f.name.startswith("timing.trt") for f in tmp_path.iterdir())

    backend = TensorRTBackend(plan)
    try:
        x = (
            np.random.default_rng(0)
            .normal(size=(backend.max_batch + 3, *shipped_chw))
            .astype(np.float32)
        )
        got = backend.infer(x)
        want = OnnxRuntimeBackend(shipped_model).infer(x)
        assert got.logits.shape == want.logits.shape and got.features is not None
        if _major(trt) < 11:  # the fake runs the fp32 graph (BuilderFlag.FP16 is a hint)
            np.testing.assert_allclose(got.logits, want.logits, atol=2e-3)
        else:  # the fp16 graph itself: held to the builder's own acceptance limits
            comp = compare_outputs(want.logits, want.cam, got.logits, got.cam)
            assert comp.failures(Thresholds()) == [], comp
            assert comp.max_logit_error < 0.05 * max(1.0, float(np.abs(want.logits).max()))
        assert backend.precision == "fp16"
    finally:
        backend.close()
    assert cuda.stats["pushes"] == cuda.stats["pops"] > 0
    assert cuda.stats["allocs"] == cuda.stats["frees"]


def test_int8_from_qdq(fake, tmp_path, qdq_model, val_set):
    trt, _ = fake
    res = build_engine(
        BuildRequest(
            qdq_model.model_path,
            "int8",
            tmp_path,
            verify_data=val_set.root,
            verify_images=8,
            thresholds=LOOSE,
        ),
        say=quiet,
    )
    assert res.plan_path.name == "lane_change.int8.qdq.plan"
    assert res.metadata.int8["method"] == "qdq"
    assert (
        res.metadata.onnx.fp32_reference["sha256"]
        == qdq_model.card.provenance["quantization"]["fp32_onnx_sha256"]
    )
    flags = plan_flags(res.plan_path)["flags"]
    if _major(trt) < 11:
        assert sorted(flags) == sorted([int(trt.BuilderFlag.FP16), int(trt.BuilderFlag.INT8)])
    else:
        assert flags == []


def test_int8_calibrator_writes_a_cache_beside_the_set_or_is_refused_on_11(
    fake, tmp_path, shipped_model, calib_set, val_set
):
    trt, _ = fake
    set_dir = tmp_path / "set"
    shutil.copytree(calib_set.manifest_path.parent, set_dir)
    req = BuildRequest(
        shipped_model,
        "int8",
        tmp_path / "e",
        calib=set_dir,
        verify_data=val_set.root,
        verify_images=8,
    )
    if _major(trt) >= 11:
        with pytest.raises(EngineBuilderError, match="quantise first") as err:
            build_engine(req, say=quiet)
        assert "\n" not in str(err.value)
        return
    res = build_engine(req, say=quiet)
    int8 = res.metadata.int8
    # default: the cache is computed on the CPU (exact input range) and TensorRT reads it
    assert int8["method"] == "IInt8EntropyCalibrator2" and int8["scales"] == "cache (cpu)"
    assert not int8["calibration_batches"]
    assert int8["calibration_set"]["set_hash"] == calib_set.hash
    caches = list((set_dir / "caches").iterdir())
    assert len(caches) == 1 and caches[0].name.endswith(f"-trt{_code(trt)}.cache")
    from engine_builder.activations import input_amax
    from engine_builder.entropy_cache import read_cache

    cache = read_cache(caches[0])
    spec = ModelCard.load(card_path_for(shipped_model)).input
    assert cache.amax("image") == pytest.approx(input_amax(spec.mean, spec.std), rel=1e-6)
    # the same set again reuses the cache; the caller's settings are the caller's
    from engine_builder.trt_api import BuildSettings

    mine = BuildSettings("fp16", None, calibration_batch=10_000)
    again = build_engine(
        BuildRequest(
            shipped_model, "int8", tmp_path / "e1", calib=set_dir, verify=False, settings=mine
        ),
        say=quiet,
    )
    assert again.metadata.int8["scales"] == "cache (reused)"
    assert mine == BuildSettings("fp16", None, calibration_batch=10_000)  # not mutated
    used = again.metadata.builder
    assert (used["precision"], used["int8_source"]) == ("int8", "calibrator")
    assert used["calibration_batch"] == len(calib_set.entries) < 10_000
    # TensorRT's own calibration on the device, from the images
    dev = build_engine(
        BuildRequest(
            shipped_model,
            "int8",
            tmp_path / "e2",
            calib=calib_set.manifest_path.parent,
            calib_cache=tmp_path / "device.cache",
            device_calibration=True,
            verify=False,
        ),
        say=quiet,
    )
    assert dev.metadata.int8["scales"] == "device"
    assert dev.metadata.int8["calibration_batches"] == 8
    assert (tmp_path / "device.cache").read_text().startswith("TRT-")
    given = build_engine(
        BuildRequest(
            shipped_model,
            "int8",
            tmp_path / "e3",
            calib_cache=tmp_path / "device.cache",
            verify=False,
        ),
        say=quiet,
    )
    assert given.metadata.int8["scales"] == "cache (given)"


def _code(trt) -> int:
    from engine_builder.trt_api import calibration_cache_version_code, parse_version

    return calibration_cache_version_code(parse_version(trt.__version__))


def test_failing_engine_is_not_published_unless_forced(fake, tmp_path, shipped_model, val_set):
    strict = Thresholds(min_agreement=1.01)
    req = BuildRequest(
        shipped_model,
        "fp16",
        tmp_path,
        verify_data=val_set.root,
        verify_images=4,
        thresholds=strict,
    )
    with pytest.raises(VerificationFailedError, match="not published"):
        build_engine(req, say=quiet)
    assert not any(p.suffix in (".plan", ".json", ".tmp") for p in tmp_path.iterdir())
    req.force = True
    res = build_engine(req, say=quiet)
    assert res.verified is False and res.metadata.verification["forced"]
    assert res.plan_path.is_file()


def test_backend_refuses_other_versions_and_runs_from_threads(
    tmp_path, monkeypatch, shipped_model, shipped_chw
):
    install(monkeypatch, "10.3.0.30")
    res = build_engine(BuildRequest(shipped_model, "fp16", tmp_path, verify=False), say=quiet)
    backend = TensorRTBackend(res.plan_path)
    x = np.random.default_rng(1).normal(size=(2, *shipped_chw)).astype(np.float32)
    expected = backend.infer(x).logits
    errors, results = [], []

    def worker():
        try:
            for _ in range(5):
                results.append(backend.infer(x).logits)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    backend.close()
    assert not errors and len(results) == 20
    assert all(np.array_equal(r, expected) for r in results)

    install(monkeypatch, "10.13.3.9")  # the JetPack was upgraded under the engine
    with pytest.raises(GapcamError) as err:
        TensorRTBackend(res.plan_path)
    msg = str(err.value)
    assert "built with TensorRT 10.3.0.30, this machine runs 10.13.3.9" in msg
    assert "rebuild it on this device: engine-builder build" in msg and "\n" not in msg


def test_ensure_builds_once_and_rebuilds_after_an_upgrade(
    tmp_path, monkeypatch, shipped_model, val_set
):
    from engine_builder.ensure import ensure_engine

    def ensure():
        return ensure_engine(shipped_model, "fp16", tmp_path, verify_data=val_set.root, say=quiet)

    install(monkeypatch, "10.3.0.30")
    assert ensure().built is True
    assert ensure().built is False
    install(monkeypatch, "10.13.3.9")
    again = ensure()
    assert again.built and "this machine runs 10.13.3.9" in again.reasons[0]


def test_cli_build_verify_bench_inspect(tmp_path, monkeypatch, capsys, shipped_model, val_set):
    from engine_builder.cli import main

    install(monkeypatch, "10.3.0.30")
    out = tmp_path / "engines"
    assert (
        main(
            [
                "build",
                str(shipped_model),
                "--out",
                str(out),
                "--data",
                str(val_set.root),
                "--verify-images",
                "8",
            ]
        )
        == 0
    )
    plan = out / "lane_change.fp16.plan"
    assert main(["verify", str(plan), "--data", str(val_set.root), "--images", "8"]) == 0
    assert main(["bench", str(plan), "--iterations", "3", "--warmup", "1"]) == 0
    assert main(["inspect", str(plan), "--layers"]) == 0
    assert main(["ensure", str(shipped_model), "--out", str(out), "--no-verify"]) == 0
    out_text = capsys.readouterr().out
    assert "PASS" in out_text and "p50 ms" in out_text and "compatible" in out_text
    assert "layers         " in out_text and "is up to date" in out_text
    assert out_text.rstrip().endswith(str(plan))  # ensure prints the engine path last


def test_selftest_table(tmp_path, monkeypatch, capsys, shipped_model, calib_set, val_set):
    import engine_builder.selftest as st
    from engine_builder.cli import main

    install(monkeypatch, "10.3.0.30")
    monkeypatch.setattr(st, "DEFAULT_CALIBRATION_SET", calib_set.manifest_path.parent)
    monkeypatch.setattr(st, "DEFAULT_VALIDATION_SET", val_set.root)
    monkeypatch.setattr(st, "set_is_complete", lambda _path: True)  # never render into the repo
    code = main(["selftest", "--out", str(tmp_path), "--iterations", "3", "--verify-images", "12"])
    out = capsys.readouterr().out
    table = out[out.index("engine ") :]
    for row in (
        "onnxruntime fp32 (CPU)",
        "tensorrt fp16",
        "tensorrt int8 (Q/DQ)",
        "tensorrt int8 (calib)",
    ):
        assert row in table
    fp16_row = next(line for line in table.splitlines() if line.startswith("tensorrt fp16"))
    assert " PASS " in fp16_row
    assert code == 0, out  # the trained shipped model meets every target, int8 included


def test_qdq_model_moved_without_its_fp32_needs_onnx(
    tmp_path, monkeypatch, qdq_model, shipped_model
):
    from gapcam.model_card import card_path_for

    install(monkeypatch, "10.3.0.30")
    moved = tmp_path / "device" / qdq_model.model_path.name
    moved.parent.mkdir()
    shutil.copy(qdq_model.model_path, moved)
    shutil.copy(card_path_for(qdq_model.model_path), card_path_for(moved))
    with pytest.raises(EngineBuilderError, match="FP32 reference .* is missing") as err:
        build_engine(BuildRequest(moved, "int8", tmp_path / "e", verify=False), say=quiet)
    assert "--onnx" in str(err.value)
    res = build_engine(
        BuildRequest(moved, "int8", tmp_path / "e", verify=False, reference_onnx=shipped_model),
        say=quiet,
    )
    assert (
        res.metadata.onnx.fp32_reference["sha256"]
        == qdq_model.card.provenance["quantization"]["fp32_onnx_sha256"]
    )
