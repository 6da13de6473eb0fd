"""cam_node's ``cpu_affinity``: the taskset-style CPU list, and a real node pinned by it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cam_node.cpu_affinity import cpu_list_problem, parse_cpu_list, require_available
from ros_harness import scene

from gapcam.errors import GapcamError


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("", set()),
        ("  ", set()),
        ("0", {0}),
        ("0,2", {0, 2}),
        ("1-3", {1, 2, 3}),
        ("0, 2-3", {0, 2, 3}),
    ],
)
def test_cpu_lists_in_taskset_syntax(text: str, cpus: set[int]) -> None:
    assert parse_cpu_list(text) == cpus
    assert cpu_list_problem(text) is None


@pytest.mark.parametrize("text", ["a", "1-", "3-1", "-1", "0;1", "1.5"])
def test_bad_cpu_lists_are_one_line(text: str) -> None:
    with pytest.raises(ValueError, match="cpu_affinity") as err:
        parse_cpu_list(text)
    assert "\n" not in str(err.value) and cpu_list_problem(text) == str(err.value)


def test_a_cpu_this_process_cannot_use_is_refused_with_the_usable_ones() -> None:
    usable = sorted(os.sched_getaffinity(0))
    require_available(frozenset(usable))
    with pytest.raises(GapcamError, match=r"CPU 4096 not available.*usable: " + str(usable[0])):
        require_available(frozenset({4096}))


def test_pin_process_pins_threads_started_before_and_after() -> None:
    """In a child process (pinning pytest itself would slow the rest of the suite)."""
    cpu = min(os.sched_getaffinity(0))
    code = f"""
import os, threading
from pathlib import Path
from cam_node.cpu_affinity import pin_process
stop = threading.Event()
before = threading.Thread(target=stop.wait)
before.start()
pin_process(frozenset({{{cpu}}}))
after = threading.Thread(target=stop.wait)
after.start()
masks = {{t.name: os.sched_getaffinity(int(t.name)) for t in Path('/proc/self/task').iterdir()}}
stop.set()
print(len(masks), sorted(set(map(tuple, masks.values()))))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split(maxsplit=1)
    assert int(out[0]) >= 3 and out[1].strip() == f"[({cpu},)]"


def _allowed_cpus(pid: int) -> set[str]:
    """``Cpus_allowed_list`` of every thread of a process."""
    lists = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                lists.add(line.split(":", 1)[1].strip())
    return lists


def test_a_pinned_node_runs_every_thread_on_its_cpu(start_node, make_camera) -> None:
    cpu = max(os.sched_getaffinity(0))
    node = start_node("/pinned_cam", "/pinned_cam/image_raw", cpu_affinity=cpu)  # an integer
    camera = make_camera(node, "/pinned_cam/image_raw")
    camera.wait_ready()
    camera.send_and_wait(scene(3))
    assert camera.verify() == 1
    assert _allowed_cpus(node.proc.pid) == {str(cpu)}
    assert f"pinned to CPU {cpu}" in node.log()


@pytest.mark.parametrize(
    ("value", "message"),
    [("4096", "CPU 4096 not available to this process"), ("'0-x'", "'0-x' is not a CPU")],
)
def test_an_impossible_cpu_affinity_is_one_fatal_line(start_node, value, message) -> None:
    node = start_node("/pin_bad", "/pin_bad/image_raw", cpu_affinity=value)
    assert node.proc.wait(timeout=60) == 2
    fatal = [ln for ln in node.log().splitlines() if "FATAL" in ln]
    assert len(fatal) == 1 and message in fatal[0], node.log()[-2000:]
    assert "Traceback" not in node.log()
