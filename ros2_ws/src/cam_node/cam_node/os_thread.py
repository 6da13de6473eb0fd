"""The name the operating system shows for the calling thread (``top -H``, ``ps -L``, ``perf``,
``/proc/<pid>/task/<tid>/comm``). ROS-free.

Why: Python names its threads for Python only; every thread of a node shows as ``python`` to the
tools people profile a vehicle computer with, next to the middleware's own (``dds.shm.*``,
``dds.ev.*``). Naming the worker lets them, and ``bench/bench_cam_node.py``, tell the node's
per-frame work from what DDS and the executor cost.
"""

from __future__ import annotations

import ctypes

_PR_SET_NAME = 15  #: prctl(2) option; the kernel keeps 15 bytes of the name
MAX_NAME_BYTES = 15
#: the node's worker thread (takes, decides, publishes), as the OS and Python name it
WORKER_THREAD = "cam_node_worker"


def set_os_thread_name(name: str) -> bool:
    """Name the calling thread (cut to 15 bytes); ``False`` where ``prctl`` is unavailable (not
    Linux), which changes nothing else."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # libc, already in the process
    except (OSError, AttributeError):
        return False
    raw = name.encode("utf-8")[:MAX_NAME_BYTES]
    return prctl(_PR_SET_NAME, ctypes.c_char_p(raw), 0, 0, 0) == 0
