"""``gapcam fleet`` on real bags: output identical to ``gapcam replay`` bag by bag (local worker
processes and a local Ray), a corrupt bag reported without stopping the others, resume, a dead
worker's bag retried, and Ctrl-C leaving valid output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from conftest import GOOD
from fleet_helpers import decisions, topic_counts

from gapcam.cli import main
from gapcam.fleet.inputs import name_bags
from gapcam.fleet.layout import MARKER, REPORT_MD, SUMMARY_JSON, TaskDir
from gapcam.fleet.local_runner import LocalRunner
from gapcam.fleet.models import ModelSource
from gapcam.fleet.task import BagTask
from gapcam.replay.replay import ReplayOptions


def _assert_same_as_replay(out: Path, reference: dict[str, Path]) -> None:
    for name, ref in reference.items():
        got = out / name / "replay"
        assert decisions(got) == decisions(ref), name
        assert topic_counts(got) == topic_counts(ref), name
        assert (out / name / "replay_report" / "report.md").is_file()


def _summary(out: Path) -> dict:
    return json.loads((out / SUMMARY_JSON).read_text())


def test_importing_the_fleet_package_does_not_import_ray():
    code = (
        "import sys, gapcam.cli, gapcam.fleet.cli, gapcam.fleet.driver, gapcam.fleet.compare, "
        "gapcam.fleet.local_runner, gapcam.fleet.ray_runner; gapcam.cli.build_parser(); print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ray_fleet_equals_replay_and_names_the_corrupt_bag(
    local_ray, bag_folder, reference, tmp_path, capsys
):
    out = tmp_path / "fleet"
    code = main(["fleet", str(bag_folder), "--out", str(out), "--no-progress", "--ray"])
    assert code == 1  # only because of the corrupt bag
    _assert_same_as_replay(out, reference)
    s = _summary(out)
    assert s["runner"].startswith("Ray tasks")
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


def test_local_fleet_resumes_and_force_redoes(bag_folder, reference, tmp_path):
    out = tmp_path / "fleet"
    args = ["fleet", str(bag_folder), "--out", str(out), "--no-progress", "--workers", "2"]
    assert main(args) == 1
    _assert_same_as_replay(out, reference)
    markers = {n: (out / n / MARKER).stat().st_mtime_ns for n in GOOD}
    first = {b["name"]: b for b in _summary(out)["bags"]}
    assert {b["status"] for n, b in first.items() if n in GOOD} == {"ok"}
    assert not any(b["reused"] for b in first.values())

    # second run: complete bags are skipped, the corrupt one is tried again and fails again
    assert main(args) == 1
    second = {b["name"]: b for b in _summary(out)["bags"]}
    assert all(second[n]["reused"] and second[n]["status"] == "ok" for n in GOOD)
    assert second["corrupt"]["status"] == "failed" and not second["corrupt"]["reused"]
    assert {n: (out / n / MARKER).stat().st_mtime_ns for n in GOOD} == markers
    assert _summary(out)["totals"]["replayed_frames"] == 0

    # only good bags (a list file): exit 0; --force replays them again, same result
    listing = tmp_path / "good.txt"
    listing.write_text("".join(f"{bag_folder / n}\n" for n in GOOD))
    good = ["fleet", str(listing), "--out", str(out), "--no-progress"]
    assert main(good) == 0
    assert main([*good, "--force", "--workers", "1"]) == 0
    assert all((out / n / MARKER).stat().st_mtime_ns > markers[n] for n in GOOD)
    _assert_same_as_replay(out, reference)


def test_a_bag_complete_with_another_model_is_not_mixed_in(
    bag_folder, tmp_path, int8_model, capsys
):
    out = tmp_path / "fleet"
    one = str(bag_folder / GOOD[0])
    assert main(["fleet", one, "--out", str(out), "--no-progress", "--workers", "1"]) == 0
    code = main(["fleet", one, "--out", str(out), "--model", str(int8_model), "--no-progress"])
    assert code == 2
    assert "holds a replay made with another model" in capsys.readouterr().err


class _KillWorker:
    """Events that SIGKILL the (single) worker when a task starts, ``times`` times."""

    def __init__(self, runner: LocalRunner, times: int) -> None:
        self.runner, self.left = runner, times
        self.results: list[dict] = []

    def total(self, frames: int) -> None:
        if self.left:
            self.left -= 1
            pid = next(reversed(self.runner.pids))  # the newest worker holds the task
            os.kill(pid, signal.SIGKILL)

    def frames(self, n: int) -> None:
        pass

    def finished(self, task: BagTask, result: dict) -> None:
        self.results.append(result)


@pytest.mark.parametrize("kills, status", [(1, "ok"), (2, "lost")])
def test_a_dead_workers_bag_is_retried_once(
    bag_folder, reference, tmp_path, shipped_model, kills, status
):
    name = GOOD[0]
    bag = name_bags([bag_folder / name])[0]
    runner = LocalRunner(workers=1)
    events = _KillWorker(runner, kills)
    task = BagTask(0, bag.name, str(bag.path), str(tmp_path))
    model = ModelSource.from_path(shipped_model)
    runner.run([task], {"model": model}, ReplayOptions(progress=False), events)
    (result,) = events.results
    assert result["status"] == status and result["attempts"] == 2
    if status == "ok":
        assert decisions(tmp_path / name / "replay") == decisions(reference[name])
    else:
        assert "worker died (signal 9) on each of 2 attempts" in result["reason"]
        assert not TaskDir(tmp_path / name).read_marker()


def test_ctrl_c_leaves_finished_bags_valid_and_a_rerun_resumes(tmp_path, bag_folder):
    from gapcam.replay.make_bag import make_bag

    long_bag = tmp_path / "long"
    make_bag(long_bag, frames_per_sequence=80, size=(160, 120))
    listing = tmp_path / "bags.txt"
    listing.write_text(f"{bag_folder / GOOD[0]}\n{long_bag}\n")
    out = tmp_path / "fleet"
    cmd = [sys.executable, "-m", "gapcam.cli", "fleet", str(listing), "--out", str(out),
           "--workers", "1", "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = out / GOOD[0] / MARKER
    while not first.exists() and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()  # still busy with the long bag
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    s = {b["name"]: b for b in _summary(out)["bags"]}
    assert s[GOOD[0]]["status"] == "ok"
    assert s["long"]["status"] == "interrupted"
    # the interrupted bag's partial output is a valid bag that holds what was replayed
    partial = decisions(out / "long" / "replay")
    assert sum(len(v) for v in partial.values()) == s["long"]["frames"] < 320
    # a rerun replays only the unfinished bag
    assert main(["fleet", str(listing), "--out", str(out), "--no-progress", "--workers", "1"]) == 0
    s = {b["name"]: b for b in _summary(out)["bags"]}
    assert s[GOOD[0]]["reused"] and not s["long"]["reused"] and s["long"]["frames"] == 320
