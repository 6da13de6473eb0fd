"""``gapcam fleet`` on real bags with local worker processes: output identical to ``gapcam replay``
bag by bag, a corrupt bag reported without stopping the others, resume, a dead worker's bag
retried, and Ctrl-C leaving valid output. (Ray: test_fleet_ray.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from fleet_helpers import GOOD, assert_same_as_replay, decisions, summary_of

from gapcam.cli import main
from gapcam.fleet.inputs import name_bags
from gapcam.fleet.layout import MARKER, TaskDir
from gapcam.fleet.local_runner import LocalRunner
from gapcam.fleet.models import ModelSource
from gapcam.fleet.task import BagTask
from gapcam.replay.replay import ReplayOptions


def test_importing_the_fleet_package_does_not_import_ray():
    code = (
        "import sys, gapcam.cli, gapcam.fleet.cli, gapcam.fleet.driver, gapcam.fleet.compare, "
        "gapcam.fleet.local_runner, gapcam.fleet.ray_runner; gapcam.cli.build_parser(); print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_local_fleet_resumes_and_force_redoes(bag_folder, reference, tmp_path):
    out = tmp_path / "fleet"
    args = ["fleet", str(bag_folder), "--out", str(out), "--no-progress", "--workers", "2"]
    assert main(args) == 1
    assert_same_as_replay(out, reference)
    markers = {n: (out / n / MARKER).stat().st_mtime_ns for n in GOOD}
    first = {b["name"]: b for b in summary_of(out)["bags"]}
    assert {b["status"] for n, b in first.items() if n in GOOD} == {"ok"}
    assert not any(b["reused"] for b in first.values())

    # second run: complete bags are skipped, the corrupt one is tried again and fails again
    assert main(args) == 1
    second = {b["name"]: b for b in summary_of(out)["bags"]}
    assert all(second[n]["reused"] and second[n]["status"] == "ok" for n in GOOD)
    assert second["corrupt"]["status"] == "failed" and not second["corrupt"]["reused"]
    assert {n: (out / n / MARKER).stat().st_mtime_ns for n in GOOD} == markers
    assert summary_of(out)["totals"]["replayed_frames"] == 0

    # only good bags (a list file): exit 0; --force replays them again, same result
    listing = tmp_path / "good.txt"
    listing.write_text("".join(f"{bag_folder / n}\n" for n in GOOD))
    good = ["fleet", str(listing), "--out", str(out), "--no-progress"]
    assert main(good) == 0
    assert main([*good, "--force", "--workers", "1"]) == 0
    assert all((out / n / MARKER).stat().st_mtime_ns > markers[n] for n in GOOD)
    assert_same_as_replay(out, reference)


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
    s = {b["name"]: b for b in summary_of(out)["bags"]}
    assert s[GOOD[0]]["status"] == "ok"
    assert s["long"]["status"] == "interrupted"
    # the interrupted bag's partial output is a valid bag that holds what was replayed
    partial = decisions(out / "long" / "replay")
    assert sum(len(v) for v in partial.values()) == s["long"]["frames"] < 320
    # a rerun replays only the unfinished bag
    assert main(["fleet", str(listing), "--out", str(out), "--no-progress", "--workers", "1"]) == 0
    s = {b["name"]: b for b in summary_of(out)["bags"]}
    assert s[GOOD[0]]["reused"] and not s["long"]["reused"] and s["long"]["frames"] == 320
