"""Pinning a node's process to CPUs (parameter ``cpu_affinity``, ``taskset -c`` syntax). ROS-free.

Why: a vehicle computer's CPU plan gives each sensor pipeline cores of its own (isolated from the
OS and the drivers), and a node must be able to stay on them with all its threads, including the
ones DDS and the runtimes start. ``taskset`` around ``ros2 launch`` would pin the launcher and
every node alike; this pins one node. Empty (the default) leaves scheduling to the OS; what
pinning did on the 2-core development machine is in the README ("Performance").
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from gapcam.errors import GapcamError


def parse_cpu_list(text: str) -> frozenset[int]:
    """``"0"``, ``"0,2"``, ``"1-3"``, ``"0,2-3"`` -> the CPU numbers; ``""`` -> none (no pinning).

    ``ValueError`` with one line saying what is wrong.
    """
    cpus: set[int] = set()
    for part in (p.strip() for p in text.split(",")) if text.strip() else ():
        lo, sep, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise ValueError(
                f"cpu_affinity {text!r}: {part!r} is not a CPU number or range "
                "(taskset -c syntax: 0 | 0,2 | 1-3)"
            ) from None
        if first < 0 or last < first:
            raise ValueError(f"cpu_affinity {text!r}: {part!r} is not a range of CPU numbers")
        cpus.update(range(first, last + 1))
    return frozenset(cpus)


def cpu_list_problem(value: object) -> str | None:
    """Why ``value`` is not a valid ``cpu_affinity`` (syntax only), or ``None``."""
    try:
        parse_cpu_list(str(value))
    except ValueError as exc:
        return str(exc)
    return None


def require_available(cpus: frozenset[int]) -> None:
    """:class:`GapcamError` (one line, with the usable CPUs) if a CPU in ``cpus`` is not
    available to this process: checked at start-up, before anything runs."""
    usable = os.sched_getaffinity(0)
    missing = sorted(cpus - usable)
    if missing:
        raise GapcamError(
            f"cpu_affinity: CPU {', '.join(map(str, missing))} not available to this process "
            f"(usable: {', '.join(map(str, sorted(usable)))}); set cpu_affinity:='' to not pin"
        )


def pin_process(cpus: frozenset[int]) -> None:
    """Pin every thread of this process to ``cpus`` (threads started later inherit it)."""
    require_available(cpus)
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(task.name), cpus)
