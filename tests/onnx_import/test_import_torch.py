"""``gapcam import`` on PyTorch networks exported the standard way (static batch 1, opset 17,
``input`` / ``logits``): logits unchanged, CAM equal to a torch forward-hook CAM, batch dynamic;
and the command line around it (``gapcam import``, ``gapcam card``, ``gapcam predict``)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from import_models import (
    MobileNetV2Like,
    ResNet18Like,
    correlation,
    export_standard,
    randomize_batchnorm,
    torch_cam,
)

from gapcam.cli import main
from gapcam.onnx_import import import_model
from gapcam.pipeline import Pipeline
from gapcam.preprocess import preprocess

SIZE = 64


@pytest.mark.parametrize("arch", [ResNet18Like, MobileNetV2Like])
def test_torch_model_cam_equals_forward_hook_cam(tmp_path, arch):
    net = randomize_batchnorm(arch(5))
    src = export_standard(net, tmp_path / "src.onnx", SIZE)
    res = import_model(src, tmp_path / "m.onnx", list("abcde"), mean=(0.5,) * 3, std=(0.5,) * 3)
    assert res.made_batch_dynamic and res.card.opset == 17
    sess = ort.InferenceSession(str(res.onnx_path), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape[0] == "batch"
    x = np.random.default_rng(0).standard_normal((3, 3, SIZE, SIZE)).astype(np.float32)
    logits, cam = sess.run(["logits", "cam"], {"input": x})
    ref_logits, ref_cam = torch_cam(net, x)
    np.testing.assert_allclose(logits, ref_logits, atol=1e-4)
    np.testing.assert_allclose(cam, ref_cam, atol=1e-4)
    assert correlation(cam, ref_cam) > 0.99999
    np.testing.assert_allclose(res.card.classifier_bias, net.fc.bias.detach().numpy(), rtol=1e-6)


def test_softmax_exports_keep_pre_softmax_logits(tmp_path):
    net = randomize_batchnorm(ResNet18Like(4))
    src = export_standard(net, tmp_path / "src.onnx", SIZE, softmax=True)
    res = import_model(src, tmp_path / "m.onnx", list("abcd"), mean=(0.5,) * 3, std=(0.5,) * 3)
    assert res.card.provenance["softmax_removed"] == "Softmax"
    x = np.random.default_rng(1).standard_normal((2, 3, SIZE, SIZE)).astype(np.float32)
    sess = ort.InferenceSession(str(res.onnx_path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(
        sess.run(["logits"], {"input": x})[0], torch_cam(net, x)[0], atol=1e-4
    )


def test_a_1000_class_model(tmp_path):
    net = randomize_batchnorm(MobileNetV2Like(1000, width=8, last=32))
    src = export_standard(net, tmp_path / "src.onnx", 32)
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"class {i}\n" for i in range(1000)))
    out = tmp_path / "deep" / "dir" / "big.onnx"  # parent folders are created
    code = main(
        [
            "import",
            str(src),
            "--out",
            str(out),
            "--labels",
            str(labels),
            "--mean",
            "0.5,0.5,0.5",
            "--std",
            "0.5,0.5,0.5",
            "--no-features",
        ]
    )
    assert code == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert len(card["classes"]) == 1000 and card["output"]["features"] is None
    pipe = Pipeline.from_model(out)
    r = pipe.analyze(np.full((48, 48, 3), 90, np.uint8))
    assert r.probabilities.shape == (1000,) and pipe.fallback_class is None
    img = pipe.render(np.full((48, 48, 3), 90, np.uint8), r)  # panel lists only the top classes
    assert img.shape == (48, 48, 3)


def test_cli_import_card_predict(tmp_path, capsys):
    net = randomize_batchnorm(MobileNetV2Like(3))
    src = export_standard(net, tmp_path / "user.onnx", SIZE)
    out = tmp_path / "m" / "mine.onnx"
    args = [
        "import",
        str(src),
        "--out",
        str(out),
        "--classes",
        "cat,dog,bird",
        "--mean",
        "0.5,0.5,0.5",
        "--std",
        "0.5,0.5,0.5",
        "--color-order",
        "BGR",
        "--fallback-class",
        "bird",
        "--name",
        "pets",
    ]
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "ReduceMean -> Gemm" in said and "self-checks passed" in said
    assert "batch made dynamic" in said
    assert main(["card", str(out)]) == 0
    card_text = capsys.readouterr().out
    assert "['N', 3, 64, 64] (NCHW), BGR" in card_text and "fallback   bird" in card_text
    # predict: probabilities equal the stated preprocessing (BGR, (x/255 - 0.5) / 0.5) + softmax
    img = (np.random.default_rng(3).random((50, 70, 3)) * 255).astype(np.uint8)
    import cv2

    cv2.imwrite(str(tmp_path / "x.png"), img)
    assert (
        main(
            ["predict", str(tmp_path / "x.png"), "--model", str(out), "--out", str(tmp_path / "p")]
        )
        == 0
    )
    rec = json.loads((tmp_path / "p" / "predictions.jsonl").read_text().splitlines()[0])
    spec = Pipeline.from_model(out).card.input
    x = preprocess(img, spec)
    assert np.allclose(
        x,
        (
            cv2.resize(img, (64, 64), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255 - 0.5
        ).transpose(2, 0, 1)[None]
        / 0.5,
        atol=1e-5,
    )
    import torch

    with torch.no_grad():
        p = torch.softmax(net(torch.from_numpy(x)), 1)[0].numpy()
    np.testing.assert_allclose(
        [rec["probabilities"][c] for c in ("cat", "dog", "bird")], p, atol=1e-5
    )
    # A bad head / a source that is not ONNX: one line, exit 2, nothing written.
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    assert (
        main(
            [
                "import",
                str(tmp_path / "junk.onnx"),
                "--out",
                str(tmp_path / "j.onnx"),
                "--classes",
                "a",
                "--mean",
                "0,0,0",
                "--std",
                "1,1,1",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("gapcam: error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "j.onnx").exists()


def test_original_file_is_untouched(tmp_path):
    net = randomize_batchnorm(ResNet18Like(2))
    src = export_standard(net, tmp_path / "src.onnx", SIZE)
    before = src.read_bytes()
    import_model(src, tmp_path / "m.onnx", ["x", "y"], mean=(0, 0, 0), std=(1, 1, 1))
    assert src.read_bytes() == before
    assert onnx.load(str(src)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1


def test_efficientnet_lite0_from_pypi(tmp_path):
    """The real EfficientNet-Lite0 architecture (package ``efficientnet-lite-pytorch``, random
    weights at 64 px to stay fast): its "same" padding hides the feature size from ONNX shape
    inference, so the importer measures it; CAM equals the torch CAM; and the TensorRT-11 fp16
    conversion covers its operators."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    from engine_builder.fp16_onnx import convert_to_fp16

    torch.manual_seed(0)
    net = EfficientNet.from_name("efficientnet-lite0", num_classes=7, image_size=SIZE).eval()
    src = tmp_path / "lite0.onnx"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.zeros(1, 3, SIZE, SIZE),),
            str(src),
            input_names=["input"],
            output_names=["logits"],
            opset_version=17,
            dynamo=False,
        )
    m, s = 127 / 255, 128 / 255
    res = import_model(src, tmp_path / "m.onnx", list("abcdefg"), mean=(m,) * 3, std=(s,) * 3)
    assert res.head.describe() == "GlobalAveragePool -> Reshape -> Gemm"
    x = np.random.default_rng(0).standard_normal((2, 3, SIZE, SIZE)).astype(np.float32)
    sess = ort.InferenceSession(str(res.onnx_path), providers=["CPUExecutionProvider"])
    logits, cam = sess.run(["logits", "cam"], {"input": x})
    with torch.no_grad():
        t = torch.from_numpy(x)
        ref_cam = torch.einsum("ck,nkhw->nchw", net._fc.weight, net.extract_features(t)).numpy()
        np.testing.assert_allclose(logits, net(t).numpy(), atol=1e-4)
    np.testing.assert_allclose(cam, ref_cam, atol=1e-4)
    # Every operator converts (Pad with computed pads, Slice, ConstantOfShape, Cast, Clip, ...).
    # Untrained feature maps are ~1e-8, below fp16's range, so only the logits are compared.
    half = convert_to_fp16(onnx.load(str(res.onnx_path)))
    got = ort.InferenceSession(half.SerializeToString(), providers=["CPUExecutionProvider"])
    half_logits = got.run(["logits"], {"input": x})[0]
    assert np.abs(half_logits - logits).max() <= 1e-2 * np.abs(logits).max()
