"""The ``cam_node`` executable (``lib/cam_node/cam_node``) and ``python -m cam_node [--ros-args ...]``.

Kept light: the stop-signal handlers go in before rclpy, OpenCV and ONNX Runtime are imported, so
that Ctrl-C during start-up ends the node without a traceback too (see :mod:`cam_node.shutdown`).
"""

import sys

from cam_node.shutdown import StopRequest


def main(args: list[str] | None = None) -> None:
    stop = StopRequest().install()
    from cam_node.node import main as run_node

    sys.exit(run_node(args, stop))


if __name__ == "__main__":
    main()
