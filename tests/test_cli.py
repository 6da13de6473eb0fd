"""The `gapcam` command line: happy paths and every user error path (one line, non-zero exit)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from gapcam.cli import main
from gapcam.model_card import card_path_for, sha256_file


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_predict_writes_overlays_and_predictions(tmp_path, image_files, shipped_model, capsys):
    out = tmp_path / "out"
    code, stdout, _ = _run(
        [
            "predict",
            image_files["jpg"],
            image_files["gray"],
            image_files["png16"],
            "--out",
            out,
            "--model",
            shipped_model,
        ],
        capsys,
    )
    assert code == 0
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 3
    for r in records:
        assert set(r) >= {"image", "decision", "probabilities", "box"}
        assert r["decision"] in r["probabilities"]
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        overlay = cv2.imread(str(out / r["overlay"]))
        assert overlay.shape == (480, 640, 3)
        if r["box"] is not None:
            x0, y0, x1, y1 = r["box"]
            assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480


def test_predict_on_a_directory_with_one_corrupt_image_keeps_the_others(
    tmp_path, image_files, shipped_model, capsys
):
    d = tmp_path / "imgs"
    d.mkdir()
    shutil.copy(image_files["jpg"], d / "a.jpg")
    (d / "b.jpg").write_bytes(image_files["jpg"].read_bytes()[:3000])  # truncated
    code, _, err = _run(["predict", d, "--out", tmp_path / "o", "--model", shipped_model], capsys)
    assert code == 1
    assert "truncated JPEG" in err and "b.jpg" in err
    assert len((tmp_path / "o" / "predictions.jsonl").read_text().splitlines()) == 1


def test_predict_matches_the_core(tmp_path, image_files, shipped_model, pipeline, capsys):
    _run(["predict", image_files["png"], "--out", tmp_path, "--model", shipped_model], capsys)
    rec = json.loads((tmp_path / "predictions.jsonl").read_text())
    r = pipeline.analyze(cv2.imread(str(image_files["png"])))
    assert rec["decision"] == r.raw_decision and rec["box"] == r.box


def _corrupt_model_dir(tmp_path, shipped_model):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    other = tmp_path / "other.onnx"
    shutil.copy(shipped_model, other)
    card = json.loads(card_path_for(shipped_model).read_text())
    card["onnx_sha256"] = "0" * 64
    card_path_for(other).write_text(json.dumps(card))
    shutil.copy(card_path_for(shipped_model), card_path_for(bad))
    return bad, other


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing_image", "no such file"),
        ("missing_model", "model file not found"),
        ("missing_card", "model card not found"),
        ("card_mismatch", "does not match its model card"),
        ("plan_on_cpu", "TensorRT"),
        ("empty_dir", "holds no images"),
        ("missing_data", "data directory not found"),
        ("bad_cam_class", "cam class 'car' unknown"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(
    case, expected, tmp_path, image_files, shipped_model, capsys
):
    bad, other = _corrupt_model_dir(tmp_path, shipped_model)
    no_card = tmp_path / "nocard.onnx"
    shutil.copy(shipped_model, no_card)
    (tmp_path / "empty").mkdir()
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"\0" * 16)
    img = image_files["jpg"]
    argv = {
        "missing_image": [
            "predict",
            tmp_path / "nope.jpg",
            "--out",
            tmp_path / "o",
            "--model",
            shipped_model,
        ],
        "missing_model": [
            "predict",
            img,
            "--out",
            tmp_path / "o",
            "--model",
            tmp_path / "none.onnx",
        ],
        "missing_card": ["predict", img, "--out", tmp_path / "o", "--model", no_card],
        "card_mismatch": ["predict", img, "--out", tmp_path / "o", "--model", other],
        "plan_on_cpu": ["predict", img, "--out", tmp_path / "o", "--model", plan],
        "empty_dir": [
            "predict",
            tmp_path / "empty",
            "--out",
            tmp_path / "o",
            "--model",
            shipped_model,
        ],
        "bad_cam_class": [
            "predict",
            img,
            "--out",
            tmp_path / "o",
            "--model",
            shipped_model,
            "--cam-class",
            "car",
        ],
        "missing_data": [
            "evaluate",
            "--data",
            tmp_path / "nodata",
            "--out",
            tmp_path / "o",
            "--model",
            shipped_model,
        ],
    }[case]
    code, _, err = _run(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gapcam: error:") and expected in lines[0]


def test_invalid_onnx_file_is_a_clear_error(tmp_path, image_files, shipped_model, capsys):
    bad, _ = _corrupt_model_dir(tmp_path, shipped_model)
    card = json.loads(card_path_for(bad).read_text())
    card["onnx_sha256"] = sha256_file(bad)  # the card describes the broken file: reach the loader
    card_path_for(bad).write_text(json.dumps(card))
    code, _, err = _run(
        ["predict", image_files["jpg"], "--out", tmp_path / "o", "--model", bad], capsys
    )
    assert code == 2 and "ONNX Runtime cannot load this model" in err


def test_console_script_prints_no_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gapcam.cli",
            "predict",
            str(tmp_path / "x.jpg"),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_evaluate_writes_metrics_and_pictures(tmp_path, shipped_model, capsys):
    from gapcam.synth import generate_dataset

    data = generate_dataset(
        tmp_path / "data", 12, seed=3, size=(224, 224), workers=1, progress=False
    )
    code, stdout, _ = _run(
        [
            "evaluate",
            "--data",
            data,
            "--out",
            tmp_path / "ev",
            "--model",
            shipped_model,
            "--cam-threshold",
            "0.5",
        ],
        capsys,
    )
    assert code == 0
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["images"] == 12 and 0.0 <= m["accuracy"] <= 1.0
    assert m["cam_threshold"] == 0.5
    assert sum(map(sum, m["confusion_matrix"])) == 12
    assert set(m["per_class"]) == {"blocked", "free", "undefined"}
    if m["cam_images"]:
        assert 0.0 <= m["cam_pointing"] <= 1.0 and 0.0 <= m["cam_iou50"] <= 1.0
    for png in ("confusion_matrix.png", "overlays.png"):
        assert cv2.imread(str(tmp_path / "ev" / png)) is not None


def test_bench_prints_stage_times_and_ratio(tmp_path, shipped_model, capsys):
    code, stdout, _ = _run(
        ["bench", "--model", shipped_model, "--iterations", "5", "--json", tmp_path / "b.json"],
        capsys,
    )
    assert code == 0 and "pure inference" in stdout
    res = json.loads((tmp_path / "b.json").read_text())
    assert res["image"] == "1280x720" and res["iterations"] == 5
    stages = res["median_ms"]
    assert set(stages) == {"preprocess", "inference", "cam", "overlay"}
    assert all(v > 0 for v in stages.values())
    # The ratios are what they say they are (no timing thresholds: the machine is shared).
    path = stages["preprocess"] + stages["inference"] + stages["cam"]
    assert res["decision_path_ms"] == pytest.approx(path)
    assert res["ratio_decision_vs_inference"] == pytest.approx(path / res["pure_inference_ms"])
    assert res["ratio_overlay_vs_inference"] > res["ratio_decision_vs_inference"]


def test_predict_refuses_hostile_images_one_line_each(tmp_path, image_files, shipped_model):
    """Bombs and corrupt JPEGs (issue 12): one line each, exit 1, no traceback, others kept."""
    import hostile_images

    d = tmp_path / "imgs"
    d.mkdir()
    shutil.copy(image_files["jpg"], d / "good.jpg")
    cases = hostile_images.hostile_images()
    for name, data in cases.items():
        (d / f"{name}.{'png' if name.startswith('png') else 'jpg'}").write_bytes(data)
    proc = subprocess.run(
        [sys.executable, "-m", "gapcam.cli", "predict", str(d), "--out", str(tmp_path / "o")]
        + ["--model", str(shipped_model)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("gapcam: skipped:")]
    assert len(skipped) == len(cases)
    assert proc.stderr.count("\n") == len(cases) + 1  # + the closing "could not be read" line
    records = (tmp_path / "o" / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(r)["image"] for r in records] == [str(d / "good.jpg")]


def test_predict_max_pixels_option(tmp_path, image_files, shipped_model, capsys):
    argv = ["predict", image_files["png"], "--out", tmp_path / "o", "--model", shipped_model]
    code, _, err = _run([*argv, "--max-pixels", 640 * 480 - 1], capsys)
    assert code == 1 and "max_pixels 307199" in err
    code, _, err = _run([*argv, "--max-pixels", 640 * 480], capsys)
    assert code == 0, err
    with pytest.raises(SystemExit):
        _run([*argv, "--max-pixels", "0"], capsys)


@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_onnx_with_its_card_is_called_damaged(
    tmp_path, image_files, shipped_model, capsys, keep
):
    """A copy cut short is the same model damaged, not "another model": the fix differs."""
    cut = tmp_path / "lane_change.onnx"
    data = shipped_model.read_bytes()
    cut.write_bytes(data[: int(len(data) * keep)])
    shutil.copy(card_path_for(shipped_model), card_path_for(cut))
    code, _, err = _run(
        ["predict", image_files["jpg"], "--out", tmp_path / "o", "--model", cut], capsys
    )
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert "ONNX file is damaged/truncated" in lines[0] and "another model" not in lines[0]
    assert "copy the model again" in lines[0]


def test_frames_max_pixels_option(tmp_path, capsys):
    """`gapcam frames` decodes with the same limit: frames over it are refused, one line each."""
    from gapcam.replay.make_bag import make_bag

    bag = tmp_path / "bag"
    make_bag(bag, frames_per_sequence=3, size=(64, 48), sequences=["approach"], compressed=False)
    code, out, err = _run(
        ["frames", bag, "--out", tmp_path / "small", "--every", "1", "--max-pixels", 64 * 48 - 1],
        capsys,
    )
    assert code == 2 and "no decodable camera frames" in err and "max_pixels 3071" in out + err
    code, out, _ = _run(["frames", bag, "--out", tmp_path / "ok", "--every", "1"], capsys)
    assert code == 0 and "wrote 6 frames" in out


def test_evaluate_loc_class_with_an_imported_model(tmp_path, imported_five_class, capsys):
    """Localisation is scored for the class asked for (or the card's), not a hard-coded one;
    ground-truth folders that are not the model's classes are refused in one line."""
    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    for c in ("car", "truck"):
        (data / c).mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(
                str(data / c / f"{i}.png"), (rng.random((40, 60, 3)) * 255).astype(np.uint8)
            )
    out = tmp_path / "eval"
    code, _, _ = _run(
        [
            "evaluate",
            "--data",
            data,
            "--out",
            out,
            "--model",
            imported_five_class,
            "--loc-class",
            "car",
        ],
        capsys,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert code == 0 and metrics["cam_localisation_class"] == "car" and metrics["images"] == 4
    code, _, err = _run(
        [
            "evaluate",
            "--data",
            data,
            "--out",
            out,
            "--model",
            imported_five_class,
            "--loc-class",
            "blocked",
        ],
        capsys,
    )
    assert code == 2 and "--loc-class 'blocked' is not one of the model's classes" in err
    (data / "blocked").mkdir()
    cv2.imwrite(str(data / "blocked" / "x.png"), np.zeros((20, 20, 3), np.uint8))
    code, _, err = _run(
        ["evaluate", "--data", data, "--out", out, "--model", imported_five_class], capsys
    )
    assert (
        code == 2 and "not among the model's classes" in err and len(err.strip().splitlines()) == 1
    )


def test_eigen_cam_on_a_model_without_features_is_one_line(
    tmp_path, image_files, model_without_features, capsys
):
    argv = ["predict", image_files["jpg"], "--out", tmp_path / "o"]
    code, _, err = _run([*argv, "--model", model_without_features, "--cam-class", "eigen"], capsys)
    assert code == 2
    assert err.strip() == (
        "gapcam: error: cam class 'eigen' needs a model exported with the 'features' output; "
        "re-export without --no-features or use cam class 'predicted'"
    )
    assert not (tmp_path / "o").exists()  # refused before any frame


@pytest.mark.parametrize("value", ["1.5", "-0.1", "big"])
def test_cam_threshold_outside_0_1_is_refused(tmp_path, image_files, value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(image_files["jpg"]), "--out", str(tmp_path), "--cam-threshold", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--cam-threshold" in err[-1] and ("0..1" in err[-1] or "not a number" in err[-1])


def test_evaluate_defaults_to_the_cards_threshold(tmp_path, shipped_model, capsys):
    from gapcam.model_card import ModelCard, card_path_for
    from gapcam.synth import generate_dataset

    data = generate_dataset(tmp_path / "d", 6, seed=8, size=(160, 120), workers=1, progress=False)
    code, _, _ = _run(["evaluate", "--data", data, "--out", tmp_path / "ev"], capsys)
    assert code == 0
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["cam_threshold"] == ModelCard.load(card_path_for(shipped_model)).cam_threshold
