"""Bags on local worker processes: the default, no cluster needed.

Each worker is a long-lived process (spawned, so ONNX Runtime never inherits a forked thread
pool) that takes one bag at a time over its own pipe. The driver knows which bag each worker
holds, so a worker that dies (killed, out of memory, a crash in native code) costs only its bag,
which is queued again once; a second death reports the bag as ``lost``.

Workers sit in their own process group: Ctrl-C reaches the driver only, which forwards one
SIGINT to every busy worker. The replay then stops between two messages and closes its output
bag, so every bag finished before - and the partial one - stays valid.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import time
from collections import deque
from multiprocessing.connection import Connection, wait
from typing import Any

from gapcam.fleet.events import Events
from gapcam.fleet.models import ModelSource, default_threads
from gapcam.fleet.task import BagTask, StopFlag, lost_result, run_task
from gapcam.replay.replay import ReplayOptions


def _worker_main(conn: Connection, env: dict[str, str]) -> None:
    """Loop of one worker process: receive a task, run it, send progress and the result."""
    os.setpgid(0, 0)  # the terminal's Ctrl-C goes to the driver, which forwards it once
    stop = StopFlag()
    stop.install()
    os.environ.update(env)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the driver is gone
            return
        if msg is None:
            return
        task, model, options = msg

        def progress(kind: str, n: int) -> None:
            conn.send(("progress", kind, n))

        result = run_task(task, model, options, progress, should_stop=lambda: stop.requested)
        conn.send(("done", result))


class _Worker:
    def __init__(self, ctx: Any, env: dict[str, str]) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, env), daemon=True)
        self.proc.start()
        child.close()
        self.task: BagTask | None = None

    def assign(self, task: BagTask, model: ModelSource, options: ReplayOptions) -> None:
        self.task = task
        self.conn.send((task, model, options))

    def interrupt(self) -> None:
        if self.proc.is_alive():
            os.kill(self.proc.pid, signal.SIGINT)

    def stop(self, timeout: float = 5.0) -> None:
        with contextlib.suppress(OSError):  # the worker is already gone
            self.conn.send(None)
        self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


class _SigintFlag:
    """Count Ctrl-C instead of raising it while the driver reads its pipes.

    A ``KeyboardInterrupt`` raised inside ``Connection.recv`` leaves half a message in the pipe,
    and the next read fails to unpickle it; counting the signal keeps every message whole. Off
    the main thread (where no handler can be installed) Ctrl-C is left as it is.
    """

    def __init__(self) -> None:
        self.count = 0
        self._previous: Any = None

    def _handle(self, signum: int, frame: object) -> None:
        self.count += 1

    def __enter__(self) -> _SigintFlag:
        with contextlib.suppress(ValueError):  # not the main thread
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class LocalRunner:
    """Run tasks on ``workers`` local processes; a dead worker's bag is retried ``retries`` times."""

    def __init__(self, workers: int = 2, retries: int = 1, stop_timeout_s: float = 120.0) -> None:
        self.workers = max(1, int(workers))
        self.retries = retries
        self.stop_timeout_s = stop_timeout_s
        self.pids: dict[int, BagTask] = {}  #: worker pid -> its task (for tests and diagnostics)

    def describe(self) -> str:
        return f"{self.workers} local worker process(es)"

    def run(
        self,
        tasks: list[BagTask],
        models: dict[str, ModelSource],
        options: ReplayOptions,
        events: Events,
    ) -> None:
        """Run every task; on Ctrl-C, stop the busy ones cleanly and re-raise."""
        if not tasks:
            return
        ctx = mp.get_context("spawn")
        n = min(self.workers, len(tasks))
        env = {"GAPCAM_ORT_THREADS": os.environ.get("GAPCAM_ORT_THREADS") or default_threads(n)}
        pending = deque(tasks)
        attempts: dict[int, int] = {}
        workers = [_Worker(ctx, env) for _ in range(n)]

        def dispatch() -> None:
            for w in workers:
                if w.task is None and pending and w.proc.is_alive():
                    task = pending.popleft()
                    w.assign(task, models[task.model_key], options)
                    self.pids[w.proc.pid] = task

        def poll() -> None:
            busy = [w for w in workers if w.task is not None]
            ready = set(wait([w.conn for w in busy] + [w.proc.sentinel for w in workers], 0.5))
            for w in list(workers):
                if w.conn in ready or w.proc.sentinel in ready:
                    self._drain(w, events, attempts)
                if w.proc.sentinel in ready:
                    self._on_death(w, pending, attempts, models, events)
                    workers.remove(w)
                    if pending:
                        workers.append(_Worker(ctx, env))

        with _SigintFlag() as sigint:
            try:
                while (pending or any(w.task is not None for w in workers)) and not sigint.count:
                    dispatch()
                    poll()
                if sigint.count:
                    # Stop the busy workers cleanly; a second Ctrl-C stops waiting for them.
                    pending.clear()
                    for w in workers:
                        if w.task is not None:
                            w.interrupt()
                    deadline = time.monotonic() + self.stop_timeout_s
                    while (
                        any(w.task is not None for w in workers)
                        and time.monotonic() < deadline
                        and sigint.count < 2
                    ):
                        poll()
                    raise KeyboardInterrupt
            finally:
                for w in workers:
                    w.stop()

    def _drain(self, w: _Worker, events: Events, attempts: dict[int, int]) -> None:
        """Handle every message the worker has sent so far."""
        try:
            while w.conn.poll():
                kind, *rest = w.conn.recv()
                if w.task is None:
                    continue
                if kind == "progress":
                    what, n = rest
                    if what == "total":
                        events.total(n)
                    else:
                        events.frames(n)
                elif kind == "done":
                    result = rest[0]
                    result["attempts"] = attempts.get(w.task.index, 0) + 1
                    task, w.task = w.task, None
                    events.finished(task, result)
        except (EOFError, OSError):  # died mid-message: the sentinel tells the rest
            pass

    def _on_death(
        self,
        w: _Worker,
        pending: deque[BagTask],
        attempts: dict[int, int],
        models: dict[str, ModelSource],
        events: Events,
    ) -> None:
        w.proc.join()
        w.conn.close()
        task, w.task = w.task, None
        if task is None:
            return
        attempts[task.index] = attempts.get(task.index, 0) + 1
        code = w.proc.exitcode
        why = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        if attempts[task.index] <= self.retries:
            pending.appendleft(task)
            return
        reason = f"worker died ({why}) on each of {attempts[task.index]} attempts"
        result = lost_result(task, models[task.model_key].sha256, reason)
        result["attempts"] = attempts[task.index]
        events.finished(task, result)
