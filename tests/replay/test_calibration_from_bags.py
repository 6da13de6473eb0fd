"""calibration/select_from_bags.py: diverse frames from real bags into a set engine-builder loads."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from replay_helpers import read_bag

from engine_builder.calibration_set import frame_features, load_image_set
from gapcam.model_card import load_card_for_onnx
from gapcam.replay import bag_io, messages

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "select_from_bags", REPO / "calibration" / "select_from_bags.py"
)
sfb = importlib.util.module_from_spec(_spec)
sys.modules["select_from_bags"] = sfb  # dataclasses look their module up there
_spec.loader.exec_module(sfb)


@pytest.fixture(scope="module")
def spec(shipped_model):
    return load_card_for_onnx(shipped_model).input


def test_selection_is_spread_deduplicated_and_loadable(
    sample_bag, sample_bag_sqlite, tmp_path, spec
):
    out = tmp_path / "calib"
    code = sfb.main(
        [
            str(sample_bag),
            str(sample_bag_sqlite),
            "--out",
            str(out),
            "--count",
            "12",
            "--max-candidates",
            "40",
        ]
    )
    assert code == 0
    s = load_image_set(out, spec, verify=True)  # what engine-builder does with --calib
    doc = json.loads((out / "manifest.json").read_text())
    sel = doc["selection"]
    assert len(s.entries) == min(12, sel["candidates"] - sel["near_duplicates_removed"]) >= 4
    assert doc["source"]["kind"] == "rosbag2" and len(doc["source"]["bags"]) == 2
    assert doc["source"]["command"].startswith("python calibration/select_from_bags.py")
    assert doc["selection"]["method"] == "farthest-point"
    assert doc["selection"]["candidates"] <= 40
    names = [e.file for e in s.entries]
    # both bags and both cameras contribute
    assert {n.split("_")[0] for n in names} == {"bag0", "bag1"}
    assert any("rear_left" in n for n in names) and any("rear_right" in n for n in names)
    # spread over time: selected stamps of bag 0 reach into both halves of the recording
    stamps = sorted(int(Path(n).stem.rsplit("_", 1)[1]) for n in names if n.startswith("bag0"))
    all_stamps = sorted(
        bag_io.stamp_ns(m.header)
        for t in ("/rear_left/image_raw",)
        for _, m in read_bag(sample_bag)[t]
    )
    mid = all_stamps[len(all_stamps) // 2]
    assert stamps[0] < mid < stamps[-1]
    # no near-duplicates among the chosen frames (the engine builder's feature distance)
    feats = np.stack([frame_features(cv2.imread(str(p))) for p in s.paths]).astype(np.float64)
    d = np.linalg.norm(feats[:, None] - feats[None], axis=2)[np.triu_indices(len(feats), 1)]
    assert d.min() / np.sqrt(feats.shape[1]) >= doc["selection"]["dedup_threshold"]
    # ground-truth labels of the sample bags travel into the manifest
    assert {e.label for e in s.entries} <= {"blocked", "free", "undefined"}
    # raw topics are stored losslessly: PNGs equal the recorded pixels
    assert all(n.endswith(".png") for n in names)
    # and the engine builder's own command accepts the set (hash check of every file)
    from engine_builder.cli import main as engine_builder

    assert engine_builder(["calib", "check", str(out)]) == 0


def test_recorded_jpegs_are_kept_byte_for_byte(sample_bag, tmp_path, spec):
    out = tmp_path / "calib_jpeg"
    s = sfb.select_from_bags(
        [sample_bag], out, spec, count=4, topics=["/rear_left/image_raw/compressed"]
    )
    recorded = {bytes(m.data) for _, m in read_bag(sample_bag)["/rear_left/image_raw/compressed"]}
    assert len(s.entries) == 4
    for p in s.paths:
        assert p.suffix == ".jpg" and p.read_bytes() in recorded


def test_identical_frames_collapse_to_one(tmp_path, spec, scene_image):
    bag = tmp_path / "static"
    with bag_io.BagWriter(bag, "mcap") as w:
        for i in range(20):
            msg = messages.raw_image_msg(
                w.store, 1_000_000_000 + i * 66_000_000, "cam", scene_image, "bgr8"
            )
            w.write("/cam/image_raw", bag_io.IMAGE, msg, 1_000_000_000 + i * 66_000_000)
    s = sfb.select_from_bags([bag], tmp_path / "calib", spec, count=8)
    assert len(s.entries) == 1
    assert s.manifest["selection"]["near_duplicates_removed"] == 19


def test_errors_are_one_line(tmp_path, capsys):
    assert sfb.main([str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("select_from_bags: error:") and "no such bag" in err and "\n" not in err
