"""``gapcam fleet --ray`` and ``gapcam compare --ray`` on a local Ray (2 CPUs, loopback only):
every good bag identical to ``gapcam replay``, the corrupt bag named, and FP32 against its INT8
Q/DQ version with the reported agreement checked against the two output bags."""

from __future__ import annotations

import json
import os

import cv2
import pytest
from fleet_helpers import GOOD, assert_same_as_replay, labels, summary_of, topic_counts

from gapcam.cli import main
from gapcam.fleet.layout import REPORT_MD


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for this module's tests (stopped after them, so its idle processes do not
    load the machine during the rest of the suite): 2 CPUs, no dashboard, every process on 127.0.0.1.

    The environment is set before Ray is imported (Ray reads it at import): no usage statistics
    are sent and Ray's single-machine mode binds to the loopback address.
    """
    from gapcam.fleet.ray_runner import LOCAL_RAY_ENV

    for k, v in LOCAL_RAY_ENV.items():
        os.environ.setdefault(k, v)
    ray = pytest.importorskip("ray", reason="Ray is the optional 'fleet' extra (dev installs it)")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=128 * 1024 * 1024,
    )
    yield ray
    ray.shutdown()


def test_ray_fleet_equals_replay_and_names_the_corrupt_bag(
    local_ray, bag_folder, reference, tmp_path, capsys
):
    out = tmp_path / "fleet"
    code = main(["fleet", str(bag_folder), "--out", str(out), "--no-progress", "--ray"])
    assert code == 1  # only because of the corrupt bag
    assert_same_as_replay(out, reference)
    s = summary_of(out)
    assert s["runner"].startswith("Ray tasks")
    assert {n["NodeManagerAddress"] for n in local_ray.nodes()} == {"127.0.0.1"}  # loopback only
    by_name = {b["name"]: b for b in s["bags"]}
    assert [b["name"] for b in s["bags"]][0] == "corrupt"  # worst first
    assert by_name["corrupt"]["status"] == "failed"
    assert "cannot open bag" in by_name["corrupt"]["reason"]
    assert all(by_name[n]["status"] == "ok" for n in GOOD)
    assert s["totals"]["failed"] == 1 and s["totals"]["ok"] == 3
    assert s["totals"]["frames"] == sum(sum(topic_counts(reference[n]).get(t, 0) for t in (
        "/rear_left/cam_node/decision", "/rear_right/cam_node/decision")) for n in GOOD)  # fmt: skip
    # the workers ran in Ray's processes, not in this one
    assert all(by_name[n]["worker"].split(":")[1] != str(os.getpid()) for n in GOOD)
    report = (out / REPORT_MD).read_text()
    assert "`corrupt`" in report and "cannot open bag" in report
    overview = cv2.imread(str(out / "fleet_overview.png"))
    assert overview is not None and overview.shape[0] > 4 * 20  # a line per bag
    assert "failed: corrupt" in capsys.readouterr().err


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
        a, b = labels(out / "a" / name / "replay"), labels(out / "b" / name / "replay")
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
