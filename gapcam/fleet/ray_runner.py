"""Bags as Ray tasks: a local Ray, or a cluster at ``--ray ADDRESS``.

The only module of gapcam that imports Ray, and only when a runner is used. The model and its
card go into Ray's object store once (``ray.put``); every task gets the same object reference
and the worker writes it to disk once per process (:mod:`gapcam.fleet.models`). A task whose
worker process or node dies is retried once by Ray (``max_retries=1``); a second loss reports the
bag as ``lost``. Progress comes back through a tiny actor that tasks add frame counts to.

Every worker must see the same paths as the driver (bags and ``--out``): on a cluster that means
a shared file system (see the README's plan for 1,000 bags).
"""

from __future__ import annotations

import os
import time
from typing import Any

from gapcam.errors import GapcamError
from gapcam.fleet.events import Events
from gapcam.fleet.models import ModelPayload, ModelSource
from gapcam.fleet.task import INTERRUPTED, BagTask, lost_result, run_task
from gapcam.replay.replay import ReplayOptions

#: Set before Ray is imported for a *local* Ray: no usage statistics sent anywhere, and every
#: Ray process binds to 127.0.0.1 (Ray's single-machine mode) instead of the machine's address.
LOCAL_RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def import_ray(local: bool) -> Any:
    """``import ray`` with the local defaults above, or a one-line error naming the extra."""
    if local:
        for k, v in LOCAL_RAY_ENV.items():
            os.environ.setdefault(k, v)
    try:
        import ray
    except ImportError as exc:
        raise GapcamError(
            "--ray needs Ray: pip install 'gapcam[fleet]' (or run without --ray for local "
            "worker processes)"
        ) from exc
    return ray


def _ray_task(task: BagTask, model: ModelPayload, options: ReplayOptions, counter: Any) -> dict:
    """Body of one Ray task (a plain function: Ray wraps it in :meth:`RayRunner.run`)."""
    os.environ.setdefault("GAPCAM_ORT_THREADS", "1")  # one CPU per task, as Ray schedules it

    def progress(kind: str, n: int) -> None:
        counter.add.remote(kind, n)

    return run_task(task, model, options, progress)


class _Counter:
    """Actor collecting frame counts from the tasks; the driver takes them every half second."""

    def __init__(self) -> None:
        self.total = 0
        self.frames = 0

    def add(self, kind: str, n: int) -> None:
        if kind == "total":
            self.total += n
        else:
            self.frames += n

    def take(self) -> tuple[int, int]:
        out = (self.total, self.frames)
        self.total = self.frames = 0
        return out


class RayRunner:
    """Run tasks on Ray: ``address`` None starts a local Ray with ``workers`` CPUs."""

    def __init__(
        self, address: str | None = None, workers: int | None = None, retries: int = 1
    ) -> None:
        self.address = address
        self.workers = workers
        self.retries = retries
        self.overhead_s: float | None = None  #: time to start or connect to Ray

    def describe(self) -> str:
        where = self.address or f"local Ray ({self.workers or 'all'} CPUs)"
        return f"Ray tasks on {where}"

    def run(
        self,
        tasks: list[BagTask],
        models: dict[str, ModelSource],
        options: ReplayOptions,
        events: Events,
    ) -> None:
        if not tasks:
            return
        ray = import_ray(local=self.address is None)
        t0 = time.perf_counter()
        started = not ray.is_initialized()
        if started:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address is None:
                kwargs["num_cpus"] = self.workers
            else:
                kwargs["address"] = self.address
            try:
                ray.init(**kwargs)
            except Exception as exc:  # ConnectionError, a timeout: say where it went wrong
                raise GapcamError(
                    f"cannot start or reach Ray at {self.address or 'a local instance'}: "
                    f"{' '.join(str(exc).split())[:200]}"
                ) from exc
        self.overhead_s = time.perf_counter() - t0
        try:
            self._run(ray, tasks, models, options, events)
        finally:
            if started:
                ray.shutdown()

    def _run(
        self,
        ray: Any,
        tasks: list[BagTask],
        models: dict[str, ModelSource],
        options: ReplayOptions,
        events: Events,
    ) -> None:
        refs = {k: ray.put(ModelPayload.from_source(m)) for k, m in models.items()}
        counter = ray.remote(num_cpus=0)(_Counter).remote()
        remote = ray.remote(num_cpus=1, max_retries=self.retries)(_ray_task)
        futures = {remote.remote(t, refs[t.model_key], options, counter): t for t in tasks}

        def collect(timeout: float) -> None:
            done, _ = ray.wait(list(futures), num_returns=len(futures), timeout=timeout)
            for ref in done:
                task = futures.pop(ref)
                events.finished(task, self._result(ray, ref, task, models))
            total, frames = ray.get(counter.take.remote())
            if total:
                events.total(total)
            if frames:
                events.frames(frames)

        try:
            while futures:
                collect(0.5)
        except KeyboardInterrupt:
            for ref in futures:
                ray.cancel(ref)  # KeyboardInterrupt in the task: replay closes its bag cleanly
            try:
                while futures:
                    collect(0.5)
            except KeyboardInterrupt:
                pass
            raise

    def _result(
        self, ray: Any, ref: Any, task: BagTask, models: dict[str, ModelSource]
    ) -> dict[str, Any]:
        from ray.exceptions import RayError, TaskCancelledError

        try:
            return ray.get(ref)
        except TaskCancelledError:
            res = lost_result(task, models[task.model_key].sha256, "interrupted (Ctrl-C)")
            res["status"] = INTERRUPTED
            return res
        except RayError as exc:  # the worker or its node died on every attempt
            reason = f"Ray worker lost on {self.retries + 1} attempts: {type(exc).__name__}"
            res = lost_result(task, models[task.model_key].sha256, reason)
            res["attempts"] = self.retries + 1
            return res
