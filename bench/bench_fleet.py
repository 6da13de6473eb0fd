"""Fleet replay throughput on this machine: local worker processes and a local Ray, 1 and 2 each.

Every configuration replays the same bags (two JPEG cameras, written cheaply by
``bench_replay.write_bag``) with the shipped model and replay's defaults (overlays on, camera
topics copied), through the real runners of ``gapcam fleet``. Figures per configuration:

* ``fps``: frames replayed / wall time of the whole run (worker start-up included);
* ``startup_s``: Ray only, time of ``ray.init`` (paid once per run, not per bag);
* ``overhead_per_bag_s``: with one worker the bags run one after another, so
  (wall - startup - time spent inside the tasks) / bags is what the runner adds per bag:
  dispatch, result return, model loading (once per worker) and process start (local).

    python bench/bench_fleet.py                    # 4 bags x 160 frames, 640x480
    python bench/bench_fleet.py --bags 8 --frames 300 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from bench_replay import write_bag

from gapcam.fleet.driver import run_fleet
from gapcam.fleet.inputs import name_bags
from gapcam.fleet.local_runner import LocalRunner
from gapcam.fleet.models import ModelSource
from gapcam.fleet.ray_runner import LOCAL_RAY_ENV, RayRunner
from gapcam.replay.replay import ReplayOptions
from gapcam.shipped import default_model


def bench(kind: str, workers: int, bags: list, work: Path) -> dict:
    runner = LocalRunner(workers) if kind == "local" else RayRunner(None, workers)
    start = time.perf_counter()
    run = run_fleet(
        bags,
        work / f"{kind}_{workers}",
        ModelSource.from_path(default_model()),
        ReplayOptions(progress=False),
        runner,
        progress=False,
    )
    wall = time.perf_counter() - start
    assert not run.failed and not run.interrupted, run.failed
    frames = sum(r["frames"] for r in run.results)
    inside = sum(r["wall_s"] for r in run.results)
    startup = getattr(runner, "overhead_s", None) or 0.0
    row = {
        "runner": kind,
        "workers": workers,
        "bags": len(bags),
        "frames": frames,
        "wall_s": round(wall, 2),
        "fps": round(frames / wall, 1),
        "startup_s": round(startup, 2) if kind == "ray" else None,
        "task_fps": round(frames / inside, 1),
    }
    if workers == 1:
        row["overhead_per_bag_s"] = round((wall - startup - inside) / len(bags), 3)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bags", type=int, default=4)
    p.add_argument("--frames", type=int, default=160, help="frames per bag (both cameras)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--runners", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    p.add_argument("--json", help="write the results here too")
    args = p.parse_args()
    for k, v in LOCAL_RAY_ENV.items():
        os.environ.setdefault(k, v)
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average, {os.cpu_count()} CPUs)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_fleet_") as tmp:
        work = Path(tmp)
        paths = []
        for i in range(args.bags):
            path = work / "bags" / f"drive_{i:02d}"
            path.parent.mkdir(exist_ok=True)
            write_bag(path, args.frames, (args.width, args.height), 15.0)
            paths.append(path)
        bags = name_bags(paths)
        for kind in args.runners:
            for workers in (1, 2):
                rows.append(bench(kind, workers, bags, work))
                print(json.dumps(rows[-1]), flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
