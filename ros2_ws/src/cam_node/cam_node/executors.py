"""Which rclpy executor runs the node's callbacks, and how it spins (parameter ``executor``).

``single_threaded`` is rclpy's ``SingleThreadedExecutor``, spun by ``rclpy.spin`` as before.
``events`` is the C++ ``rclpy.experimental.EventsExecutor``: it reacts to the middleware's
"new message" and timer events instead of rebuilding a wait set and walking the node's entities
in Python for every message, which is most of what the executor costs per camera frame (README,
"Performance"). It exists from ROS 2 Kilted on; Humble and Jazzy (the Jetson images) lack it, so
``auto`` takes it where rclpy has it and ``single_threaded`` elsewhere. The default is
``single_threaded`` (``config/cam_node.yaml``): ``events`` stays opt-in while a first-frame
observation under load is open (README, "The executor").

Two facts of the ``EventsExecutor`` shipped with rclpy 9.1 (Kilted) that the spin loop works
around, measured here:

* ``spin()`` and ``spin_once()`` without a timeout never run a timer and never deliver a
  message (the process just waits, or busy-waits at 100 % CPU in a thread). That is why an
  earlier try of this executor in the node "published nothing". ``spin_once(timeout_sec=...)``
  works, so :func:`spin` always passes a finite timeout; it also bounds how long a shutdown of
  the context (rclpy's SIGINT/SIGTERM handlers, see :mod:`cam_node.shutdown`) takes to end the
  loop, on top of the executor's own wake-up on shutdown.
* A message published from the thread that holds the GIL to a subscription *in the same
  process* can deadlock it (Fast DDS delivers intra-process synchronously into the executor's
  callback, which waits for the GIL). The node never subscribes to its own outputs, so this does
  not arise here; do not reuse this executor for a node that does.
"""

from __future__ import annotations

import rclpy
from rclpy.node import Node

from gapcam.errors import GapcamError

#: Values of the ``executor`` parameter (``auto``: ``events`` where rclpy has it).
EXECUTORS = ("auto", "events", "single_threaded")

#: Longest a single ``spin_once`` of the events executor waits (see the module docstring).
EVENTS_SPIN_TIMEOUT_S = 0.1


def events_available() -> bool:
    """Whether this rclpy ships the ``EventsExecutor`` (Kilted and later)."""
    try:
        from rclpy.experimental import EventsExecutor  # noqa: F401
    except ImportError:
        return False
    return True


def resolve(kind: str) -> str:
    """The executor ``kind`` (a parameter value) means here: ``events`` or ``single_threaded``.

    :class:`GapcamError` for an unknown value, or ``events`` where rclpy lacks it.
    """
    if kind not in EXECUTORS:
        raise GapcamError(f"executor must be one of {', '.join(EXECUTORS)}, got {kind!r}")
    if kind == "auto":
        return "events" if events_available() else "single_threaded"
    if kind == "events" and not events_available():
        raise GapcamError(
            "executor events needs rclpy.experimental.EventsExecutor (ROS 2 Kilted or later); "
            "use executor:=auto or single_threaded"
        )
    return kind


def spin(node: Node, kind: str) -> None:
    """Run ``node``'s callbacks until the ROS context is shut down (SIGINT/SIGTERM)."""
    kind = resolve(kind)
    if kind == "single_threaded":
        rclpy.spin(node)  # rclpy's global SingleThreadedExecutor, as before this option
        return
    from rclpy.experimental import EventsExecutor

    executor = EventsExecutor()
    executor.add_node(node)
    try:
        while executor.context.ok():
            executor.spin_once(timeout_sec=EVENTS_SPIN_TIMEOUT_S)
    finally:
        executor.remove_node(node)
        executor.shutdown()
