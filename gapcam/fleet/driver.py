"""``gapcam fleet``'s driver: plan the tasks, skip finished bags, run the rest, write the report.

The driver never replays anything itself; it decides what to run (resume), hands the tasks to a
runner (local processes or Ray), shows progress over bags and frames, and turns the results into
``fleet_summary.json`` and ``fleet_report.md`` - also after Ctrl-C, for the bags that finished.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gapcam.errors import GapcamError
from gapcam.fleet.inputs import BagInput, check_outside
from gapcam.fleet.models import ModelSource
from gapcam.fleet.task import FAILED, INTERRUPTED, OK, BagTask
from gapcam.replay.replay import ReplayOptions


class Runner(Protocol):
    def describe(self) -> str: ...

    def run(
        self,
        tasks: list[BagTask],
        models: dict[str, ModelSource],
        options: ReplayOptions,
        events: Any,
    ) -> None: ...


@dataclass
class FleetRun:
    """What one fleet run did, bag by bag (in input order) and in total."""

    results: list[dict[str, Any]]
    wall_s: float
    runner: str
    interrupted: bool = False
    models: dict[str, str] = field(default_factory=dict)  #: key -> model path

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.results if r["status"] in FAILED]


def plan(
    bags: list[BagInput], out_root: Path, key: str, model: ModelSource, force: bool
) -> tuple[list[BagTask], dict[int, dict[str, Any]]]:
    """Tasks to run, and the recorded results of bags already complete (skipped unless force).

    A folder holding a complete replay made with *another* model is refused rather than
    overwritten or mixed into this run's report.
    """
    check_outside(bags, out_root)
    todo: list[BagTask] = []
    reused: dict[int, dict[str, Any]] = {}
    for i, b in enumerate(bags):
        task = BagTask(i, b.name, str(b.path.absolute()), str(out_root.absolute()), key)
        done = task.task_dir.read_marker()
        if done is not None and not force:
            if done.get("model_sha256") != model.sha256:
                raise GapcamError(
                    f"{task.task_dir.root}: holds a replay made with another model "
                    f"({done.get('model_id')}); pass --force to redo it or choose another --out"
                )
            reused[i] = dict(done, reused=True)
        else:
            todo.append(task)
    return todo, reused


class _Progress:
    """Two bars - bags and frames - fed by the runner's events; collects the results."""

    def __init__(self, total_bags: int, done_bags: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.results: dict[tuple[str, int], dict[str, Any]] = {}
        self.enabled = enabled
        self.bags = tqdm(
            total=total_bags, initial=done_bags, unit="bag", desc="bags", disable=not enabled,
            position=0, dynamic_ncols=True,
        )  # fmt: skip
        self.frame_bar = tqdm(
            total=0, unit="frame", desc="frames", disable=not enabled, position=1,
            dynamic_ncols=True, leave=False,
        )  # fmt: skip

    def total(self, frames: int) -> None:
        self.frame_bar.total += frames
        self.frame_bar.refresh()

    def frames(self, n: int) -> None:
        self.frame_bar.update(n)

    def finished(self, task: BagTask, result: dict[str, Any]) -> None:
        self.results[(task.model_key, task.index)] = result
        self.bags.update(1)
        if result["status"] in FAILED and self.enabled:  # else listed once at the end
            self.bags.write(f"gapcam fleet: {task.name}: {result['status']}: {result['reason']}")

    def close(self) -> None:
        self.frame_bar.close()
        self.bags.close()


def not_finished(task: BagTask, model: ModelSource) -> dict[str, Any]:
    """Placeholder result of a bag the run never finished (Ctrl-C came first)."""
    return {
        "name": task.name,
        "input": task.bag,
        "model_key": task.model_key,
        "model_sha256": model.sha256,
        "model_id": None,
        "status": INTERRUPTED,
        "reason": "not replayed (run interrupted)",
        "frames": 0,
        "attempts": 0,
        "reused": False,
    }


def run_tasks(
    work: dict[str, tuple[list[BagTask], dict[int, dict[str, Any]], int]],
    models: dict[str, ModelSource],
    options: ReplayOptions,
    runner: Runner,
    progress: bool = True,
) -> tuple[dict[str, list[dict[str, Any]]], bool, float]:
    """Run the planned tasks of one or more models together (``compare`` runs two).

    ``work`` maps a model key to (tasks, reused results, number of bags). Returns per key the
    results in bag order, whether the run was interrupted, and the wall time.
    """
    tasks = [t for todo, _, _ in work.values() for t in todo]
    total = sum(n for _, _, n in work.values())
    events = _Progress(total, total - len(tasks), progress and sys.stderr.isatty())
    interrupted = False
    start = time.perf_counter()
    try:
        runner.run(tasks, models, options, events)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        events.close()
    wall = time.perf_counter() - start
    out: dict[str, list[dict[str, Any]]] = {}
    for key, (todo, reused, n) in work.items():
        by_index = dict(reused)
        for t in todo:
            by_index[t.index] = events.results.get((key, t.index)) or not_finished(t, models[key])
        out[key] = [by_index[i] for i in range(n)]
    return out, interrupted, wall


def run_fleet(
    bags: list[BagInput],
    out_root: str | Path,
    model: ModelSource,
    options: ReplayOptions,
    runner: Runner,
    *,
    force: bool = False,
    progress: bool = True,
) -> FleetRun:
    """Replay every bag with ``model`` into ``out_root`` and write the fleet report there."""
    from gapcam.fleet.summary import write_fleet_report

    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    todo, reused = plan(bags, out_root, "model", model, force)
    results, interrupted, wall = run_tasks(
        {"model": (todo, reused, len(bags))}, {"model": model}, options, runner, progress
    )
    run = FleetRun(
        results["model"], round(wall, 3), runner.describe(), interrupted, {"model": str(model.path)}
    )
    write_fleet_report(run, out_root)
    return run


def exit_status(run: FleetRun) -> int:
    """0 all bags replayed, 1 some bag failed, 130 interrupted (see ``gapcam fleet --help``)."""
    if run.interrupted:
        return 130
    return 1 if run.failed else 0


__all__ = ["OK", "FleetRun", "exit_status", "plan", "run_fleet", "run_tasks"]
