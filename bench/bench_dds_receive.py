"""What receiving one camera frame over Fast DDS costs a ``raw=True`` subscriber, nothing else.

    .venv/bin/python bench/bench_dds_receive.py [--frames 240] [--size 1280x720]
        [--profile ros2_ws/fastdds_localhost.xml] [--mallopt] [--via worker|executor]
        [--take kept-buffer|bytes]

A child process publishes ``sensor_msgs/Image`` (``rgb8``, best effort, 30 Hz) and this process
receives it as ``cam_node`` does (``--via worker``: :class:`cam_node.camera_input.CameraInput`,
one thread waiting on the subscription and taking each frame itself) or as a plain rclpy node
does (``--via executor``: a ``raw=True`` subscription with an empty callback, spun by
``rclpy.spin_once``), and prints its own CPU time per received message (all threads: Fast DDS's
receive thread, the take, the executor if any).
It isolates the DDS/rclpy share of the node's per-frame CPU that ``bench/bench_cam_node.py``
reports, so Fast DDS profiles can be compared without the model's noise (README, Performance).
``--profile`` replaces the Fast DDS profile in both processes; ``--mallopt`` makes glibc serve
allocations up to 32 MB from the heap in the subscriber (see the README for why that matters here
and not in the node). ``--take`` chooses, for ``--via worker``, between the node's take into a
kept buffer (``rcl_take_serialized_message`` through ctypes, :mod:`cam_node.serialized_take`)
and rclpy's ``take_message``, a new ``bytes`` per frame.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _publish(frames: int, w: int, h: int) -> None:
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_dds_publisher")
    pub = node.create_publisher(Image, "/bench_dds_image", qos_profile_sensor_data)
    msg = Image(width=w, height=h, step=3 * w, encoding="rgb8", data=bytes(3 * w * h))
    t0 = time.monotonic()
    while pub.get_subscription_count() == 0 and time.monotonic() - t0 < 20:
        time.sleep(0.05)
    time.sleep(1.0)
    for i in range(frames):
        msg.header.stamp.sec = i
        pub.publish(msg)
        time.sleep(1 / 30)
    time.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=240, help="measured messages (after 30 more)")
    ap.add_argument("--size", default="1280x720", help="WxH of the rgb8 frames")
    ap.add_argument("--profile", help="Fast DDS profile XML (default: the localhost one)")
    ap.add_argument("--mallopt", action="store_true", help="heap, not mmap, up to 32 MB")
    ap.add_argument(
        "--via",
        choices=("worker", "executor"),
        default="worker",
        help="take frames as cam_node does (worker, default) or through rclpy's executor",
    )
    ap.add_argument(
        "--take",
        choices=("kept-buffer", "bytes"),
        default="kept-buffer",
        help="--via worker: into one kept buffer (cam_node) or a new bytes per frame",
    )
    ap.add_argument("--role", default="subscriber", help=argparse.SUPPRESS)
    ap.add_argument("--domain", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))

    from cam_node.ros_env import apply_localhost_env

    env = apply_localhost_env(domain_id=args.domain)
    if args.profile:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(Path(args.profile).resolve())
        os.environ.update(env)
    if args.role == "publisher":
        _publish(args.frames + 30, w, h)
        return 0
    if args.mallopt:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
        mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
        mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD

    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_dds_subscriber")
    sizes: list[int] = []
    if args.via == "executor":
        node.create_subscription(
            Image,
            "/bench_dds_image",
            lambda b: sizes.append(len(b)),
            qos_profile_sensor_data,
            raw=True,
        )
    else:
        from cam_node.camera_input import CameraInput

        camera = CameraInput(
            node,
            Image,
            "/bench_dds_image",
            qos_profile_sensor_data,
            reuse_buffer=args.take == "kept-buffer",
        )

        def take_frames() -> None:
            while (taken := camera.take_newest()) is not None:
                sizes.extend([len(taken.msg)] * (1 + taken.skipped))

        taker = threading.Thread(target=take_frames, daemon=True)
        taker.start()
    cmd = [sys.executable, __file__, "--role", "publisher", "--domain", env["ROS_DOMAIN_ID"]]
    cmd += ["--frames", str(args.frames), "--size", args.size]
    if args.profile:
        cmd += ["--profile", args.profile]
    pub = subprocess.Popen(cmd, env=env, cwd=REPO)
    marks: dict[str, tuple] = {}

    def watch() -> None:  # the spin loop may be cam_node's, so the counting happens beside it
        deadline = time.monotonic() + args.frames / 30 + 40
        while pub.poll() is None and time.monotonic() < deadline:
            if "start" not in marks and len(sizes) >= 30:
                marks["start"] = (os.times(), len(sizes))
            time.sleep(0.005)
        marks["end"] = (os.times(), len(sizes))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        if args.via == "executor":
            while watcher.is_alive():
                rclpy.spin_once(node, timeout_sec=0.1)
        watcher.join()
        if args.via == "worker":
            camera.close()
            taker.join()
            camera.release()
    finally:
        pub.kill()
        pub.wait()
    start, n0 = marks.get("start", (None, 0))
    end, n1 = marks["end"]
    if start is None:
        print("received fewer than 30 messages: publisher and subscriber did not match")
        return 1
    cpu = end.user + end.system - start.user - start.system
    print(
        f"{Path(env['FASTDDS_DEFAULT_PROFILES_FILE']).name}{' +mallopt' if args.mallopt else ''}"
        f" via {args.via}{' (' + args.take + ')' if args.via == 'worker' else ''}: "
        f"received {n1}/{args.frames + 30} of {sizes[-1]} B; subscriber CPU per message "
        f"{1000 * cpu / max(1, n1 - n0):.2f} ms over {n1 - n0}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
