"""What publishing one decision costs the node's worker: as an rclpy message, or as CDR bytes.

    .venv/bin/python bench/bench_decision_publish.py [--count 600] [--rate 60]

A child process subscribes to ``gapcam_msgs/LaneChangeDecision`` as rviz or ``ros2 bag record``
would (reliable); this process publishes the decision of one real frame output (shipped model)
with the node's output QoS, alternating between the two ways, and prints the thread CPU time per
decision (median): ``convert.decision_msg`` (an rclpy ``Header`` and message, converted to C and
serialized by rclpy) against ``convert.decision_cdr`` (the bytes written once, what the node
publishes). Between two decisions it touches 32 MB, as the inference between two frames does, so
the figures are for cold caches, as in the node (hot, both are several times cheaper).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import time

import numpy as np

TOPIC = "/bench_decision_publish/decision"


def _subscribe() -> None:
    import rclpy
    from cam_node.qos import output_qos
    from gapcam_msgs.msg import LaneChangeDecision
    from rclpy.executors import ExternalShutdownException

    rclpy.init()
    node = rclpy.create_node("bench_decision_subscriber")
    node.create_subscription(LaneChangeDecision, TOPIC, lambda _msg: None, output_qos(10))
    with contextlib.suppress(KeyboardInterrupt, ExternalShutdownException):
        rclpy.spin(node)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=600, help="decisions published, both ways")
    ap.add_argument("--rate", type=float, default=60.0, help="decisions per second")
    ap.add_argument("--role", default="publisher", help=argparse.SUPPRESS)
    ap.add_argument("--domain", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    from cam_node.ros_env import apply_localhost_env

    env = apply_localhost_env(domain_id=args.domain)
    if args.role == "subscriber":
        _subscribe()
        return 0

    import rclpy
    from cam_node import convert
    from cam_node.qos import output_qos
    from gapcam_msgs.msg import LaneChangeDecision

    from gapcam.backends.onnxruntime_backend import OnnxRuntimeBackend
    from gapcam.pipeline import Pipeline
    from gapcam.ros_cdr import CdrHeader
    from gapcam.shipped import default_model
    from gapcam.stream import StreamProcessor

    child = subprocess.Popen(
        [sys.executable, __file__, "--role", "subscriber", "--domain", env["ROS_DOMAIN_ID"]],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    rclpy.init()
    try:
        node = rclpy.create_node("bench_decision_publisher")
        pub = node.create_publisher(LaneChangeDecision, TOPIC, output_qos(10))
        deadline = time.monotonic() + 30
        while pub.get_subscription_count() == 0:
            if time.monotonic() > deadline or child.poll() is not None:
                print(f"the subscriber did not come up (exit {child.poll()})", file=sys.stderr)
                return 1
            time.sleep(0.05)
        time.sleep(1.0)  # the subscriber's reader knows our writer too

        proc = StreamProcessor(Pipeline(OnnxRuntimeBackend(default_model(), threads=1)))
        frame = (np.random.default_rng(0).random((720, 1280, 3)) * 255).astype(np.uint8)
        out = proc.process("camera", frame, 1_700_000_000_000_000_005, "rear_left_camera")
        header = CdrHeader(1_700_000_000, 5, "rear_left_camera")
        caches = np.zeros(32 << 20, np.uint8)

        def as_message() -> None:
            pub.publish(convert.decision_msg(convert.header_msg(header), out, 12.3))

        def as_cdr() -> None:
            pub.publish(convert.decision_cdr(header, out, 12.3))

        ways = {"rclpy message": as_message, "CDR bytes": as_cdr}
        cpu_ms: dict[str, list[float]] = {name: [] for name in ways}
        for k in range(args.count + 40):
            caches[::64] += 1  # evict, as inference does between two decisions
            name = list(ways)[k % 2]
            t0 = time.thread_time()
            ways[name]()
            if k >= 40:  # after a warm-up
                cpu_ms[name].append((time.thread_time() - t0) * 1e3)
            time.sleep(1.0 / args.rate)
    finally:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
        rclpy.try_shutdown()

    med = {name: float(np.median(v)) for name, v in cpu_ms.items()}
    print(f"decision publish, thread CPU per decision (median of {args.count // 2} each):")
    for name, ms in med.items():
        print(f"  {name:14s} {ms:.3f} ms")
    print(f"  CDR bytes / rclpy message: {med['CDR bytes'] / med['rclpy message']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
