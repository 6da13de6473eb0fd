"""One fleet task: replay one bag with one model into its task folder, and say how it went.

The task is a thin wrapper around :func:`gapcam.replay.replay.replay_bag` - the output is what
``gapcam replay`` writes, by construction - that turns every outcome into a small JSON-able
result (never an exception), so one bad bag cannot stop a fleet. It runs the same in a local
worker process and in a Ray worker.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from gapcam.errors import GapcamError
from gapcam.fleet.layout import TaskDir
from gapcam.fleet.models import ModelPayload, ModelSource, pipeline_for
from gapcam.replay import bag_io
from gapcam.replay.replay import ReplayInterrupted, ReplayOptions, ReplaySummary, replay_bag

#: Statuses of a bag in a fleet run; the first group counts as failed (exit status 1).
FAILED = ("failed", "truncated", "lost")
OK = "ok"
INTERRUPTED = "interrupted"

#: ``progress(kind, n)``: kind "total" (frames expected in this bag) or "frames" (n more done).
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class BagTask:
    """One bag for one model."""

    index: int
    name: str
    bag: str
    out_root: str
    model_key: str = "model"

    @property
    def task_dir(self) -> TaskDir:
        return TaskDir(Path(self.out_root) / self.name)


def _no_progress(kind: str, n: int) -> None:
    pass


def expected_frames(bag: str | Path, options: ReplayOptions) -> int:
    """Frames replay will process, from ``metadata.yaml`` alone (0 when it cannot tell).

    Only for the progress bar: reading the metadata costs nothing, opening the storage would.
    """
    from gapcam.replay.topics import select_cameras

    try:
        meta = bag_io.read_metadata(bag)
        topics = [
            bag_io.TopicInfo(
                t["topic_metadata"]["name"], t["topic_metadata"]["type"], int(t["message_count"])
            )
            for t in meta["topics_with_message_count"]
        ]
        total = sum(c.count for c in select_cameras(topics, options.topics, options.prefer))
    except Exception:  # no or odd metadata: the bag's own error comes from the replay
        return 0
    return min(total, options.max_frames) if options.max_frames else total


def run_task(
    task: BagTask,
    model: ModelSource | ModelPayload,
    options: ReplayOptions,
    progress: Progress = _no_progress,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Replay ``task.bag`` into ``task.task_dir``; returns the result (see :func:`_result`).

    ``should_stop`` is asked once before anything is touched: a worker told to stop while the
    task was on its way does not start it.
    """
    tdir = task.task_dir
    start = time.perf_counter()
    if should_stop():
        return _result(task, model.sha256, INTERRUPTED, "not started (Ctrl-C)", None, start)
    tdir.clear()
    options = replace(options, progress=False, report=True)
    progress("total", expected_frames(task.bag, options))
    counter = _FrameCounter(progress, should_stop)
    try:
        look = options.settings
        pipe = pipeline_for(model, options.backend, look.cam_class, look.cam_threshold)
        summary = replay_bag(task.bag, tdir.output_bag, options, pipeline=pipe, on_frame=counter)
    except ReplayInterrupted as exc:
        counter.flush()
        return _result(task, model.sha256, INTERRUPTED, "interrupted (Ctrl-C)", exc.summary, start)
    except KeyboardInterrupt:
        return _result(task, model.sha256, INTERRUPTED, "interrupted (Ctrl-C)", None, start)
    except GapcamError as exc:
        counter.flush()
        partial = _partial_summary(tdir)
        # replay keeps what it wrote: a truncated bag's valid part is reported with its frames
        status = "truncated" if partial and partial.get("status") == "truncated" else "failed"
        return _result(task, model.sha256, status, str(exc), partial, start)
    except Exception as exc:  # a bug or an unforeseen library error: report it, go on
        counter.flush()
        reason = f"{type(exc).__name__}: {bag_io.one_line(exc)}"
        return _result(task, model.sha256, "failed", reason, None, start)
    counter.flush()
    result = _result(task, model.sha256, OK, None, summary, start)
    tdir.write_marker(result)
    return result


def lost_result(task: BagTask, model_sha256: str, reason: str) -> dict[str, Any]:
    """The result of a task whose worker died (twice): the driver writes it, not the worker."""
    res = _result(task, model_sha256, "lost", reason, _partial_summary(task.task_dir), 0.0)
    res["wall_s"] = None
    res["worker"] = None
    return res


class _FrameCounter:
    """``on_frame`` callback: progress at most a few times a second, and a late stop request.

    A stop that reached the worker after the task started but before replay installed its own
    signal handler would otherwise be lost; raising ``KeyboardInterrupt`` here, after a frame is
    fully written, ends the replay the same clean way replay's own handler does.
    """

    def __init__(self, progress: Progress, should_stop: Callable[[], bool]) -> None:
        self.progress = progress
        self.should_stop = should_stop
        self.pending = 0
        self.last = time.monotonic()

    def __call__(self, record: object) -> None:
        if self.should_stop():
            raise KeyboardInterrupt
        self.pending += 1
        now = time.monotonic()
        if now - self.last > 0.25:
            self.flush()
            self.last = now

    def flush(self) -> None:
        if self.pending:
            self.progress("frames", self.pending)
            self.pending = 0


def _partial_summary(tdir: TaskDir) -> dict[str, Any] | None:
    """The report summary a failed replay left (a truncated bag's valid part), if any."""
    try:
        return json.loads((tdir.report_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None


def _result(
    task: BagTask,
    model_sha256: str,
    status: str,
    reason: str | None,
    summary: ReplaySummary | dict[str, Any] | None,
    start: float,
) -> dict[str, Any]:
    """The JSON-able result of one task: what the fleet report and summary need per bag."""
    tdir = task.task_dir
    s: dict[str, Any] = {}
    latencies: list[float] = []
    labelled = None
    if isinstance(summary, ReplaySummary):
        s = summary.to_dict()
        latencies = [r.latency_ms for r in summary.records]
        labelled = sum(r.truth is not None for r in summary.records)
    elif isinstance(summary, dict):
        s = summary
    cams = s.get("cameras") or {}
    changes = sum(int(c.get("decision_changes", 0)) for c in cams.values())
    recorded = float(s.get("recorded_s") or 0.0)
    minutes = recorded * max(1, len(cams)) / 60.0
    lat_means = [c["latency_mean_ms"] for c in cams.values() if c.get("latency_mean_ms")]
    return {
        "name": task.name,
        "input": str(task.bag),
        "model_key": task.model_key,
        "model_sha256": model_sha256,
        "model_id": s.get("model_id"),
        "status": status,
        "reason": reason,
        "output_bag": str(tdir.output_bag) if tdir.output_bag.exists() else None,
        "report": str(tdir.report_dir / "report.md") if tdir.report_dir.exists() else None,
        "cameras": len(cams),
        "frames": int(s.get("frames") or 0),
        "skipped_frames": int(s.get("skipped") or 0),
        "recorded_s": round(recorded, 3),
        "wall_s": round(time.perf_counter() - start, 3),
        "replay_fps": s.get("fps"),
        "accuracy": s.get("accuracy"),
        "labelled_frames": labelled,
        "decision_changes": changes,
        "changes_per_min": round(changes / minutes, 3) if minutes > 0 else None,
        "latency_mean_ms": round(float(np.mean(latencies)), 3)
        if latencies
        else (round(float(np.mean(lat_means)), 3) if lat_means else None),
        "latency_p95_ms": round(float(np.percentile(latencies, 95)), 3) if latencies else None,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "attempts": 1,
        "reused": False,
    }


class StopFlag:
    """SIGINT/SIGTERM handler for a worker *between* replays: remember, let the task end cleanly.

    During a replay, replay's own handler is installed (and restores this one after), so a signal
    either stops the running replay between two messages or prevents the next one from starting.
    """

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._handle)
            signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True
