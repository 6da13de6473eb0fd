"""Fixtures of the fleet tests: a folder of small real bags (one corrupt), `gapcam replay`'s own
output for each good bag as the reference, and the shipped model quantised to Q/DQ INT8 once.
The local Ray lives in test_fleet_ray.py (started once, stopped when its tests are done)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fleet_helpers import GOOD

from gapcam.cli import main
from gapcam.replay.make_bag import make_bag

#: Tiny bags: 2 sequences x FRAMES frames x 2 cameras each; the decision logic is the same.
SIZE = (160, 120)
FRAMES = 6


@pytest.fixture(scope="session")
def bag_folder(tmp_path_factory) -> Path:
    """Three good bags (two mcap, one sqlite3) and ``corrupt`` (garbage storage file)."""
    root = tmp_path_factory.mktemp("fleet_bags")
    for seed, name in enumerate(GOOD):
        storage = "sqlite3" if name == "drive_c" else "mcap"
        make_bag(root / name, storage=storage, frames_per_sequence=FRAMES, size=SIZE, seed=seed)
    bad = root / "corrupt"
    shutil.copytree(root / "drive_a", bad)
    for f in bad.glob("*.mcap"):
        f.write_bytes(os.urandom(4096))
    return root


@pytest.fixture(scope="session")
def reference(bag_folder, tmp_path_factory) -> dict[str, Path]:
    """bag name -> output bag of ``gapcam replay BAG --out ...`` (the CLI itself)."""
    out = tmp_path_factory.mktemp("reference")
    refs = {}
    for name in GOOD:
        assert main(["replay", str(bag_folder / name), "--out", str(out / name)]) == 0
        refs[name] = out / name
    return refs


@pytest.fixture(scope="session")
def int8_model(tmp_path_factory, shipped_model) -> Path:
    """The shipped model quantised to Q/DQ INT8 with a few synthetic calibration scenes."""
    import cv2

    from engine_builder.calibration_set import load_image_set
    from engine_builder.quantize import quantize_model
    from gapcam.model_card import load_card_for_onnx
    from gapcam.synth import render_scene

    calib = tmp_path_factory.mktemp("calib")
    for i in range(24):
        image, _ = render_scene(100 + i, size=(128, 128))
        cv2.imwrite(str(calib / f"{i:03d}.png"), image)
    card = load_card_for_onnx(shipped_model)
    out = tmp_path_factory.mktemp("int8") / "lane_change.int8.qdq.onnx"
    result = quantize_model(
        shipped_model,
        card,
        load_image_set(calib, card.input),
        out,
        validation=None,
        method="max",  # the fastest calibration; the comparison, not the INT8 quality, is tested
        force=True,
        say=lambda _m: None,
    )
    return Path(result.model_path)
