"""engine-builder with models brought in by ``gapcam import``: any class count and input size,
a static batch (PyTorch's default export) through quantize / verify / bench, a held-out part of
--calib when there is no --val, the calibration-method fallback, and label-set notes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest

from engine_builder.calibration_set import load_image_set
from engine_builder.cli import main
from engine_builder.compare import Thresholds
from engine_builder.errors import VerificationFailedError
from engine_builder.quantize import quantize_model, static_batch
from gapcam.backends.onnxruntime_backend import OnnxRuntimeBackend
from gapcam.model_card import ModelCard, card_path_for, sha256_file

EASY = Thresholds(min_agreement=0.0, min_cam_correlation=0.0, max_accuracy_drop=None)


@pytest.fixture(scope="module")
def static_model(tmp_path_factory, imported_five_class):
    """The imported 5-class model with its batch axis fixed to 1, card updated (sha)."""
    d = tmp_path_factory.mktemp("static")
    model = onnx.load(str(imported_five_class))
    for vi in (*model.graph.input, *model.graph.output):
        dim = vi.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_value = 1
    path = d / "static.onnx"
    onnx.save(model, str(path))
    data = json.loads(card_path_for(imported_five_class).read_text())
    data["onnx_sha256"] = sha256_file(path)
    card_path_for(path).write_text(json.dumps(data))
    return path


def test_static_batch_backend_runs_any_batch(static_model, imported_five_class):
    assert static_batch(static_model) == 1 and static_batch(imported_five_class) is None
    static, dynamic = OnnxRuntimeBackend(static_model), OnnxRuntimeBackend(imported_five_class)
    assert static.static_batch == 1 and dynamic.static_batch is None
    x = np.random.default_rng(0).standard_normal((3, 3, 64, 64)).astype(np.float32)
    a, b = static.infer(x), dynamic.infer(x)
    np.testing.assert_allclose(a.logits, b.logits, atol=1e-5)
    np.testing.assert_allclose(a.cam, b.cam, atol=1e-5)


def test_quantize_verify_bench_a_static_batch_model(capsys, tmp_path, static_model, image_folder):
    out = tmp_path / "s.int8.qdq.onnx"
    code = main(
        [
            "quantize",
            str(static_model),
            "--calib",
            str(image_folder),
            "--calib-images",
            "20",
            "--out",
            str(out),
            "--force",
        ]
    )
    said = capsys.readouterr()
    assert code == 0, said.err
    # No --val: part of --calib is held out, and said; lane-change labels are not its classes.
    assert "holding out 4 of 20 calibration images" in said.out
    assert "are not the model's classes" in said.out
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["validation_held_out_from_calib"] is True
    assert report["validation_set"]["images"] == 4 and report["calibration_set"]["images"] == 16
    assert report["methods_tried"][0]["method"] == "entropy"
    assert ModelCard.load(card_path_for(out)).classes == ("car", "truck", "bike", "person", "empty")
    code = main(
        [
            "verify",
            str(out),
            "--data",
            str(image_folder),
            "--images",
            "6",
            "--min-agreement",
            "0",
            "--min-cam-corr",
            "-1",
        ]
    )
    said = capsys.readouterr()
    # Thresholds off: a random-weight net's INT8 figures prove nothing; verify must run the
    # static-batch Q/DQ model against its FP32 reference and report them.
    assert code == 0, said.err
    assert "CAM correlation" in said.out and "PASS" in said.out
    js = tmp_path / "b.json"
    code = main(
        ["bench", str(static_model), "--iterations", "3", "--warmup", "1", "--json", str(js)]
    )
    said = capsys.readouterr()
    assert code == 0 and "static batch of 1" in said.out
    assert [r["batch"] for r in json.loads(js.read_text())] == [1, 2]


def test_entropy_misses_then_percentile_then_max_are_tried_and_named(
    tmp_path, imported_five_class, image_folder
):
    card = ModelCard.load(card_path_for(imported_five_class))
    calib = load_image_set(image_folder, card.input).subset(10)
    said: list[str] = []
    impossible = Thresholds(min_agreement=0.0, min_cam_correlation=1.01, max_accuracy_drop=None)
    out = tmp_path / "x.onnx"
    with pytest.raises(VerificationFailedError, match="entropy, percentile, max"):
        quantize_model(
            imported_five_class,
            card,
            calib,
            out,
            validation=None,
            thresholds=impossible,
            say=said.append,
        )
    assert not out.exists()
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert [t["method"] for t in report["methods_tried"]] == ["entropy", "percentile", "max"]
    assert any("trying percentile" in s for s in said) and any("trying max" in s for s in said)
    # Targets met at once: entropy is kept and only it was tried.
    res = quantize_model(
        imported_five_class, card, calib, out, validation=None, thresholds=EASY, say=said.append
    )
    assert res.report["method"] == "entropy" and len(res.report["methods_tried"]) == 1
    assert ModelCard.load(card_path_for(out)).provenance["quantization"]["method"] == "entropy"


def test_bench_an_nhwc_model(capsys, tmp_path):
    """bench feeds the layout the card states (channels last here)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "onnx_import"))
    import onnx_graphs as g

    from gapcam.onnx_import import import_model

    src = tmp_path / "k.onnx"
    onnx.save(g.accepted()["nhwc_keras_like"], str(src))
    res = import_model(src, tmp_path / "k_cam.onnx", ["a", "b", "c"], mean=(0, 0, 0), std=(1, 1, 1))
    shutil.copy(res.onnx_path, tmp_path / "copy.onnx")
    assert main(["bench", str(res.onnx_path), "--iterations", "2", "--warmup", "1"]) == 0
    assert "p50 ms" in capsys.readouterr().out


def test_tensorrt_profile_of_a_static_batch_graph():
    """A parsed input with a fixed batch gets a one-shape profile (min = opt = max)."""
    from engine_builder.trt_api import static_profile_batch

    assert static_profile_batch((1, 3, 224, 224)) == 1
    assert static_profile_batch((-1, 3, 224, 224)) is None
    assert static_profile_batch((4, 224, 224, 3)) == 4
