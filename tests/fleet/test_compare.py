"""``gapcam compare``: a model against itself agrees everywhere; against its INT8 Q/DQ version the
reported agreement is what the two output bags say (test_fleet_ray.py)."""

from __future__ import annotations

import json

from fleet_helpers import GOOD

from gapcam.cli import main


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
