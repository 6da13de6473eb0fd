"""``gapcam compare``: a model against itself agrees everywhere; against its INT8 Q/DQ version the
reported agreement and accuracies are what the two output bags say, frame by frame."""

from __future__ import annotations

import json

import cv2
from conftest import GOOD
from fleet_helpers import decisions

from gapcam.cli import main


def _labels(bag) -> dict[tuple[str, int], tuple[str, int]]:
    """(decision topic, stamp) -> (published label, raw class index) of an output bag."""
    out = {}
    for topic, msgs in decisions(bag).items():
        for ts, fields in msgs:
            f = dict(fields)
            out[(topic, ts)] = (f["decision_label"], f["raw_decision"])
    return out


def test_a_model_against_itself_agrees_on_every_frame(bag_folder, shipped_model, tmp_path):
    out = tmp_path / "self"
    args = ["compare", *(str(bag_folder / n) for n in GOOD[:2]), "--model", str(shipped_model)]
    assert main([*args, "--against", str(shipped_model), "--out", str(out), "--no-progress"]) == 0
    s = json.loads((out / "compare_summary.json").read_text())
    assert s["frames"] > 0 and s["bags_compared"] == 2
    assert s["agreement_published"] == 1.0 and s["agreement_raw"] == 1.0
    assert s["disagreeing_frames"] == 0
    assert s["accuracy"]["a"] == s["accuracy"]["b"] is not None
    report = (out / "compare_report.md").read_text()
    assert "agree on every frame" in report
    assert not list((out / "compare").glob("*_disagreements.jpg"))
    for name in GOOD[:2]:  # both timelines per camera, as images
        assert len(list((out / "compare").glob(f"{name}_timeline_*.png"))) == 2


def test_fp32_against_int8_on_ray(local_ray, bag_folder, shipped_model, int8_model, tmp_path):
    out = tmp_path / "int8"
    code = main(
        ["compare", str(bag_folder), "--model", str(shipped_model), "--against", str(int8_model),
         "--out", str(out), "--no-progress", "--ray"]
    )  # fmt: skip
    assert code == 1  # the corrupt bag, reported for both models
    s = json.loads((out / "compare_summary.json").read_text())
    assert s["bags"] == 4 and s["bags_compared"] == 3 and s["bags_failed"] == 1
    assert s["models"]["b"]["model_id"].endswith("/int8/onnxruntime")
    # the agreement is what the two replays' output bags say, frame by frame
    same_pub = same_raw = n = diff = 0
    for name in GOOD:
        a, b = _labels(out / "a" / name / "replay"), _labels(out / "b" / name / "replay")
        assert a.keys() == b.keys()
        for k in a:
            n += 1
            same_pub += a[k][0] == b[k][0]
            same_raw += a[k][1] == b[k][1]
            diff += a[k] != b[k]
    assert s["frames"] == n
    assert s["agreement_published"] == round(same_pub / n, 4)
    assert s["agreement_raw"] == round(same_raw / n, 4)
    assert s["disagreeing_frames"] == diff
    assert s["accuracy"]["a"] is not None and s["accuracy"]["b"] is not None
    sheets = sorted((out / "compare").glob("*_disagreements.jpg"))
    with_diff = [d["name"] for d in s["per_bag"] if d["disagreeing_frames"]]
    assert [p.name for p in sheets] == sorted(f"{n}_disagreements.jpg" for n in with_diff)
    for p in sheets:  # two overlays side by side per row
        img = cv2.imread(str(p))
        assert img is not None and img.shape[1] == 800
    report = (out / "compare_report.md").read_text()
    assert "`corrupt`" in report and "cannot open bag" in report
