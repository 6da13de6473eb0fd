"""The command line: CPU paths end to end, and every error is one line with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers_plan import write_fake_plan

from engine_builder.cli import main

try:
    import tensorrt  # noqa: F401

    HAVE_TRT = True
except ImportError:
    HAVE_TRT = False


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("quantize", "build", "verify", "bench", "inspect", "selftest", "ensure", "calib"):
        assert cmd in out


def test_module_entry_point_runs():
    res = subprocess.run(
        [sys.executable, "-m", "engine_builder", "verify", "missing.plan"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and res.stderr.startswith("engine-builder: error:")
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["build", "nope.onnx", "--out", "o"], "model file not found"),
        (["verify", "nope.plan"], "no such engine or model file"),
        (["bench", "nope.onnx"], "no such engine or model file"),
        (["quantize", "nope.onnx"], "model file not found"),
        (["calib", "check", "nope_dir"], "calibration set not found"),
        (["calib", "cache", "nope_dir", "--out", "c.cache", "--trt-version", "10.3"], "not found"),
    ],
)
def test_user_errors_are_one_line(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv)
    assert code == 2
    line = one_line_error(err)
    assert line.startswith("engine-builder: error:") and needle in line


def test_int8_without_calibration_is_refused_before_tensorrt(capsys, tmp_path, shipped_model):
    code, _, err = run(capsys, "build", shipped_model, "--precision", "int8", "--out", tmp_path)
    assert code == 2 and "int8 needs calibration" in one_line_error(err)


def test_qdq_model_with_fp16_or_calib_is_refused(capsys, tmp_path, qdq_model):
    code, _, err = run(
        capsys, "build", qdq_model.model_path, "--precision", "fp16", "--out", tmp_path
    )
    assert code == 2 and "build it with --precision int8" in one_line_error(err)


@pytest.mark.skipif(HAVE_TRT, reason="checks the message shown where TensorRT is absent")
def test_build_without_tensorrt_says_where_to_build(capsys, tmp_path, shipped_model):
    code, _, err = run(capsys, "build", shipped_model, "--precision", "fp16", "--out", tmp_path)
    line = one_line_error(err)
    assert code == 2 and "TensorRT is not available here" in line and "Jetson" in line
    code, _, err = run(capsys, "selftest", "--out", tmp_path)
    assert code == 2 and "TensorRT is not available here" in one_line_error(err)


def test_verify_qdq_model_on_cpu_pass_and_fail(capsys, qdq_model, val_set, tmp_path):
    report = tmp_path / "v.json"
    code, out, _ = run(
        capsys,
        "verify",
        qdq_model.model_path,
        "--data",
        val_set.root,
        "--images",
        24,
        "--min-agreement",
        0,
        "--min-cam-corr",
        -1,
        "--json",
        report,
    )
    assert code == 0 and "PASS" in out and "top-1 agreement" in out
    data = json.loads(report.read_text())
    assert data["passed"] and data["comparison"]["images"] == 24
    code, out, err = run(
        capsys,
        "verify",
        qdq_model.model_path,
        "--data",
        val_set.root,
        "--images",
        8,
        "--min-agreement",
        1.01,
    )
    assert code == 1 and one_line_error(err).startswith("engine-builder: FAIL:")


def test_quantize_command_writes_model_card_and_report(
    capsys, tmp_path, shipped_model, calib_set, val_set
):
    out = tmp_path / "q.int8.qdq.onnx"
    code, stdout, err = run(
        capsys,
        "quantize",
        shipped_model,
        "--calib",
        calib_set.manifest_path.parent,
        "--val",
        val_set.root,
        "--out",
        out,
        "--method",
        "percentile",
        "--calib-images",
        16,
        "--val-images",
        16,
        "--force",
    )
    assert code == 0, err
    assert (
        out.is_file()
        and out.with_suffix(".json").is_file()
        and out.with_suffix(".report.json").is_file()
    )
    assert "CAM correlation" in stdout
    code, stdout, _ = run(capsys, "quantize", out, "--check-only")
    assert code == 0 and "follows TensorRT's rules" in stdout


def test_bench_an_onnx_model_on_cpu(capsys, shipped_model, tmp_path):
    js = tmp_path / "b.json"
    code, out, _ = run(
        capsys, "bench", shipped_model, "--iterations", 5, "--warmup", 1, "--json", js
    )
    assert code == 0 and "p50 ms" in out and "onnxruntime backend" in out
    rows = json.loads(js.read_text())
    assert [r["batch"] for r in rows] == [1, 2]
    assert all(r["p99_ms"] >= r["p50_ms"] > 0 and r["images_per_s"] > 0 for r in rows)


def test_inspect_reads_metadata_without_tensorrt(capsys, tmp_path, card):
    plan = tmp_path / "lane_change.fp16.plan"
    write_fake_plan(plan, card)
    code, out, _ = run(capsys, "inspect", plan)
    assert code == 0 and "precision      fp16" in out and "tensorrt       10.3.0.30" in out
    if not HAVE_TRT:
        assert "metadata only" in out
    code, out, _ = run(capsys, "inspect", plan, "--json")
    assert code == 0 and json.loads(out)["plan_file"] == plan.name


def test_calib_select_check_and_cpu_cache(capsys, tmp_path, image_folder, shipped_model):
    out = tmp_path / "myset"
    code, stdout, _ = run(capsys, "calib", "select", image_folder, "--out", out, "--count", 12)
    assert code == 0 and "12 frames of 96" in stdout
    code, stdout, _ = run(capsys, "calib", "check", out)
    assert code == 0 and "12 images match their manifest" in stdout
    cache = tmp_path / "lane_change.cache"
    code, stdout, _ = run(
        capsys,
        "calib",
        "cache",
        out,
        "--model",
        shipped_model,
        "--out",
        cache,
        "--trt-version",
        "10.3.0.30",
    )
    assert code == 0
    from engine_builder.entropy_cache import read_cache

    parsed = read_cache(cache)
    assert parsed.version_code == 100300
    assert "image" in parsed.scales and "cam" in parsed.scales
    assert all(s > 0 for s in parsed.scales.values())


@pytest.mark.parametrize("damage", ["truncated", "replaced", "missing"])
def test_inspect_checks_the_plan_bytes_against_its_metadata(capsys, tmp_path, card, damage):
    """No TensorRT needed: a plan whose bytes are not the ones built is reported, exit 1."""
    plan = tmp_path / "lane_change.fp16.plan"
    write_fake_plan(plan, card, payload=b"engine bytes " * 100)
    code, out, _ = run(capsys, "inspect", plan)
    assert "matches its .plan.json" in out
    if damage == "truncated":
        plan.write_bytes(plan.read_bytes()[:700])
    elif damage == "replaced":
        plan.write_bytes(b"another engine " * 100)
    else:
        plan.unlink()
    code, out, err = run(capsys, "inspect", plan)
    assert code == 1 and "precision      fp16" in out  # the metadata is still shown
    line = one_line_error(err)
    assert (
        line.startswith(f"engine-builder: FAIL: {plan}:")
        and "rebuild: engine-builder build" in line
    )
    assert ("missing" if damage == "missing" else "truncated, damaged or replaced") in line
