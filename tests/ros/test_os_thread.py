"""cam_node.os_thread: the worker's name as top -H, perf and the bench see it."""

from __future__ import annotations

import threading
from pathlib import Path

from cam_node.os_thread import MAX_NAME_BYTES, WORKER_THREAD, set_os_thread_name


def _comm(tid: int) -> str:
    return Path(f"/proc/self/task/{tid}/comm").read_text().strip()


def test_names_the_calling_thread_only() -> None:
    seen: dict[str, str] = {}

    def run() -> None:
        assert set_os_thread_name("gapcam_probe_thread_long")
        seen["comm"] = _comm(threading.get_native_id())

    main_before = _comm(threading.get_native_id())
    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen["comm"] == "gapcam_probe_thread_long"[:MAX_NAME_BYTES]  # the kernel keeps 15
    assert _comm(threading.get_native_id()) == main_before


def test_the_worker_name_fits_the_kernel() -> None:
    assert 0 < len(WORKER_THREAD.encode()) <= MAX_NAME_BYTES
