"""Ctrl-C and ``docker stop`` end the node cleanly, however often and whenever they arrive.

In a terminal SIGINT reaches every process of the foreground group and ``ros2 launch`` forwards one
more, so each node gets two, a few milliseconds apart; ``docker stop`` sends SIGTERM. Python's
default SIGINT handler raises ``KeyboardInterrupt`` wherever the main thread happens to be (an
import, the model load, ``destroy_node`` in a ``finally``): a traceback and exit -2, which
``ros2 launch`` reports as "process has died". So the first thing the executable does is install
handlers that only record the request. ``rclpy.init`` installs its own handlers after ours and
calls ours from them; they shut the ROS context down, ``rclpy.spin`` returns, and ``main()``
cleans up and exits 0. The clean-up starts by ignoring both signals (:meth:`StopRequest.ignore`):
a Python handler would be reset to the default action while the interpreter finalizes, and a
second signal landing then would kill the process (exit -2 / -15) after a clean stop.

No rclpy here: this module is imported before anything heavy.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

#: What ends the node: Ctrl-C / ``ros2 launch`` (SIGINT) and ``docker stop`` / systemd (SIGTERM).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Records SIGINT/SIGTERM instead of raising; :attr:`requested` tells the node to stop."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signals: list[int] = []  #: every stop signal received, in order

    def install(self) -> StopRequest:
        """Replace the SIGINT/SIGTERM handlers of this process (call from the main thread)."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        return self

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.append(signum)
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def ignore(self) -> None:
        """From now on SIGINT/SIGTERM do nothing: the process is already on its way out.

        ``SIG_IGN`` survives interpreter finalization (a Python handler does not) and rclpy's
        ``try_shutdown`` keeps it when it takes its own handlers out of the chain.
        """
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
