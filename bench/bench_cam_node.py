"""Benchmark cam_node over real DDS: two rear cameras (1280x720, 30 Hz) for a while, on CPU.

    .venv/bin/python bench/bench_cam_node.py [--duration 30] [--rate 30] [--size 1280x720]
        [--transport raw|compressed] [--overlay] [--pin]

Starts one ``cam_node`` process per camera as ``rear_cameras.launch.py`` does (namespaces
``rear_left``/``rear_right``, ``config/cam_node.yaml`` + ``config/rear_cameras.yaml``), publishes
synthetic frames from this process at the camera rate with fresh stamps, and prints per camera:

* decision rate (Hz) and drop rate (frames published without a decision; the node's own drop
  causes from ``/diagnostics``),
* latency stamp -> decision received here, p50/p99 (stamp-to-publish plus one DDS hop), and the
  node's own ``latency_ms`` (receipt -> publish),
* node CPU time per decided frame (``/proc/<pid>/stat``) against the core's own CPU time per
  frame, measured afterwards in this process on the same frames with the same work and thread
  count: :meth:`gapcam.stream.StreamProcessor.process` on the pixels of the same ``Image``
  message data (same encoding), or :func:`gapcam.preprocess.decode_frame` + ``process`` on the
  same JPEG bytes (``--transport compressed``); with ``--overlay`` also
  :meth:`~gapcam.stream.StreamProcessor.render` for the share of frames the node drew an
  overlay for (its ``overlays_rendered`` counter). The ratio is what ROS, DDS and message
  conversion cost.
* where the node's CPU goes, per decided frame and thread group (``/proc/<pid>/task``): the
  worker (named ``cam_node_worker`` for this, and for ``top -H`` and ``perf``), Fast DDS's own
  threads (``dds.*``: shared-memory receive and reassembly of the 2.7 MB frames), the executor;
  and the worker's CPU beyond the core alone at the camera rate (take, header, publish).

``--pin`` pins each node to a core of its own (``cpu_affinity``: left CPU 0, right CPU 1) and the
core-alone loop to CPU 0 like the left node, to see what pinning buys; by default the OS
schedules, as ``rear_cameras.yaml`` leaves it.

The core alone is measured twice on the same frames: back to back (``core alone``, the figure
the ratio has always used), and at the camera rate, sleeping between frames as the node does
(``core alone at N Hz``). A process that sleeps between frames spends more CPU on each one (the
caches and the CPU's state after an idle gap: 11.5 -> 13.3 ms per frame on the development
machine for the same core, no ROS involved), so the second ratio is the one that isolates what
ROS costs; both are printed.

This process (the camera simulator) shares the CPU with the nodes; its CPU use is printed too.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "ros2_ws" / "src" / "cam_node" / "config"
SIDES = ("rear_left", "rear_right")
_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_cpu_s(stat: str) -> float:
    """User + system CPU seconds in the text of a ``/proc`` ``stat`` file (fields 14 and 15)."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads, ended ones too."""
    return _stat_cpu_s(Path(f"/proc/{pid}/stat").read_text())


#: how the node's CPU is split: its worker (take, decide, publish; with the OpenCV pool threads
#: it starts, which inherit its name), the middleware's threads (Fast DDS names them ``dds.*``:
#: receiving from shared memory, reassembling, events), the rest (the executor: timers,
#: parameters, diagnostics)
THREAD_GROUPS = ("worker", "DDS", "executor+other")


def _thread_cpu_s(pid: int, worker: str) -> dict[str, float]:
    """CPU seconds of a process's live threads by :data:`THREAD_GROUPS` (a thread that ended
    since is not counted: the node starts none while it runs)."""
    out = dict.fromkeys(THREAD_GROUPS, 0.0)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended just now
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        group = (
            "worker" if comm == worker else "DDS" if comm.startswith("dds.") else THREAD_GROUPS[2]
        )
        out[group] += _stat_cpu_s(stat)
    return out


def _frames(size: tuple[int, int], n: int = 4) -> list[np.ndarray]:
    from gapcam.synth import render_scene

    return [render_scene(100 + i, size=size)[0] for i in range(n)]


_IMAGE_FIELDS = ("encoding", "width", "height", "step", "data", "is_bigendian")


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=30.0, help="measured seconds (default 30)")
    ap.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    ap.add_argument("--rate", type=float, default=30.0, help="frames per second per camera")
    ap.add_argument("--size", default="1280x720", help="WxH of the camera frames")
    ap.add_argument("--encoding", default="rgb8", help="sensor_msgs/Image encoding sent")
    ap.add_argument(
        "--transport",
        choices=("raw", "compressed"),
        default="raw",
        help="raw sensor_msgs/Image, or JPEG on image_raw/compressed (input_transport:=compressed)",
    )
    ap.add_argument("--jpeg-quality", type=int, default=90, help="JPEG quality (compressed)")
    ap.add_argument("--cameras", type=int, default=2, choices=(1, 2))
    ap.add_argument("--overlay", action="store_true", help="also subscribe to ~/cam_overlay")
    ap.add_argument("--model", help="ONNX model for the nodes (default: the shipped one)")
    ap.add_argument(
        "--pin",
        action="store_true",
        help="pin the nodes to CPU 0 and 1 (cpu_affinity) and the core-alone loop to CPU 0",
    )
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))

    from cam_node.os_thread import WORKER_THREAD
    from cam_node.ros_env import apply_localhost_env

    env = apply_localhost_env()
    import cv2
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from gapcam_msgs.msg import LaneChangeDecision
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import CompressedImage, Image

    from gapcam.ros_image import encode_bgr

    sides = SIDES[: args.cameras]
    procs: dict[str, subprocess.Popen] = {}
    for side in sides:
        cmd = [sys.executable, "-m", "cam_node", "--ros-args", "-r", f"__ns:=/{side}"]
        cmd += ["-r", f"image:=/{side}/image_raw"]
        cmd += ["--params-file", str(CONFIG / "cam_node.yaml")]
        cmd += ["--params-file", str(CONFIG / "rear_cameras.yaml")]
        if args.model:
            cmd += ["-p", f"model_path:={Path(args.model).resolve()}"]
        cmd += ["-p", f"input_transport:={args.transport}"]
        if args.pin:
            cmd += ["-p", f"cpu_affinity:={SIDES.index(side)}"]
        procs[side] = subprocess.Popen(
            cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )

    rclpy.init()
    node = rclpy.create_node("bench_cameras")
    lock = threading.Lock()
    recv: dict[str, list[tuple[int, int, float]]] = {
        s: [] for s in sides
    }  # stamp, arrival, node ms
    diag: dict[str, dict[str, str]] = {}

    def on_decision(side: str):
        def cb(msg: LaneChangeDecision) -> None:
            now = time.time_ns()
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            with lock:
                recv[side].append((stamp, now, msg.latency_ms))

        return cb

    def on_diag(msg: DiagnosticArray) -> None:
        for s in msg.status:
            for side in sides:
                if s.name.startswith(f"/{side}/cam_node:"):
                    diag[side] = {kv.key: kv.value for kv in s.values}

    reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {}
    for side in sides:
        node.create_subscription(
            LaneChangeDecision, f"/{side}/cam_node/decision", on_decision(side), reliable
        )
        if args.overlay:
            node.create_subscription(Image, f"/{side}/cam_node/cam_overlay", lambda m: None, 1)
        if args.transport == "compressed":
            topic, msg_type = f"/{side}/image_raw/compressed", CompressedImage
        else:
            topic, msg_type = f"/{side}/image_raw", Image
        pubs[side] = node.create_publisher(msg_type, topic, qos_profile_sensor_data)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, reliable)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()

    frames = _frames((w, h))
    if args.transport == "compressed":
        jpegs = [
            cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, args.jpeg_quality])[1].tobytes()
            for f in frames
        ]
        msgs = [CompressedImage(format="jpeg", data=j) for j in jpegs]
        fields = []
    else:
        fields = [encode_bgr(f, args.encoding) for f in frames]
        msgs = [Image(**f) for f in fields]
    try:
        deadline = time.monotonic() + 120
        while not all(p.get_subscription_count() > 0 for p in pubs.values()):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs.values()):
                print("cam_node did not come up", file=sys.stderr)
                return 1
            time.sleep(0.05)
        time.sleep(0.5)

        sent: dict[str, list[int]] = {s: [] for s in sides}
        period = 1.0 / args.rate
        t_start = time.monotonic()
        t_measure = t_start + args.warmup
        t_end = t_measure + args.duration
        cpu0: dict[str, float] = {}
        n0: dict[str, int] = {}
        self_cpu0 = 0.0
        i = 0
        while True:
            tick = t_start + i * period
            now = time.monotonic()
            if tick > now:
                time.sleep(tick - now)
            if not cpu0 and time.monotonic() >= t_measure:
                with lock:
                    n0 = {s: len(recv[s]) for s in sides}
                cpu0 = {s: _cpu_s(procs[s].pid) for s in sides}
                threads0 = {s: _thread_cpu_s(procs[s].pid, WORKER_THREAD) for s in sides}
                self_cpu0 = time.process_time()
            if time.monotonic() >= t_end:
                break
            for side in sides:
                msg = msgs[i % len(msgs)]
                stamp = time.time_ns()
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
                msg.header.frame_id = f"{side}_camera"
                pubs[side].publish(msg)
                if cpu0:
                    sent[side].append(stamp)
            i += 1
        cpu1 = {s: _cpu_s(procs[s].pid) for s in sides}
        threads1 = {s: _thread_cpu_s(procs[s].pid, WORKER_THREAD) for s in sides}
        self_cpu = time.process_time() - self_cpu0
        time.sleep(1.5)  # the last decisions and a diagnostics status arrive
        with lock:
            got = {s: list(recv[s]) for s in sides}
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGINT)
        for p in procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()

    # The core alone on the same frames with the same work, same thread count as
    # rear_cameras.yaml (1): what the node would cost if ROS were free.
    from gapcam.backends.onnxruntime_backend import OnnxRuntimeBackend
    from gapcam.bench import NODE_OVERLAY_SCALE
    from gapcam.pipeline import Pipeline
    from gapcam.preprocess import decode_frame, set_opencv_threads
    from gapcam.ros_image import image_to_bgr, pixel_view
    from gapcam.shipped import default_model
    from gapcam.stream import StreamProcessor, overlay_size

    set_opencv_threads(1)
    if args.pin:
        os.sched_setaffinity(0, {0})  # this thread, the core-alone loop: as the left node
    core = StreamProcessor(
        Pipeline(
            OnnxRuntimeBackend(
                Path(args.model) if args.model else default_model(),
                threads=1,
            )
        )
    )
    spec = core.pipeline.card.input
    overlay_share = 0.0
    if args.overlay:  # the share of decided frames the node drew an overlay for
        shares = [
            int(diag[s]["overlays_rendered"]) / max(1, int(diag[s]["decisions_out"]))
            for s in sides
            if "overlays_rendered" in diag.get(s, {})
        ]
        overlay_share = sum(shares) / len(shares) if shares else 0.0

    due = [0.0]  # overlay debt: one overlay each time it reaches a whole frame

    def core_frame(k: int) -> None:
        if args.transport == "compressed":
            data = jpegs[k % len(jpegs)]
            image, size = decode_frame(data, spec, "bench")
            order = "BGR"
        else:
            f = fields[k % len(fields)]
            view = pixel_view(f["encoding"], f["width"], f["height"], f["step"], f["data"])
            if view is None:
                image, order = image_to_bgr(**{k_: f[k_] for k_ in _IMAGE_FIELDS}), "BGR"
            else:
                image, order = view
            size = (f["width"], f["height"])
        out = core.process("c", image, k, "", order=order, frame_size=size)
        due[0] += overlay_share
        if due[0] >= 1.0:
            due[0] -= 1.0
            size = overlay_size(out.result.image_size, NODE_OVERLAY_SCALE)
            if args.transport == "compressed":  # the node decodes again at overlay size
                image = decode_frame(data, spec, "bench", cover=size)[0]
            core.render(image, out, scale=NODE_OVERLAY_SCALE, order=order)

    for k in range(len(frames)):
        core_frame(k)
    n_core = 300  # 10 s at 30 Hz paced: a steadier denominator than a few frames
    c0, t0 = time.process_time(), time.perf_counter()
    for k in range(n_core):
        core_frame(k)
    core_cpu_ms = (time.process_time() - c0) / n_core * 1e3
    core_wall_ms = (time.perf_counter() - t0) / n_core * 1e3
    c0, t0 = time.process_time(), time.monotonic()
    for k in range(n_core):  # at the camera rate: the node's duty cycle, without ROS
        delay = t0 + k / args.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        core_frame(k)
    paced_cpu_ms = (time.process_time() - c0) / n_core * 1e3

    what = f"JPEG q{args.jpeg_quality}" if args.transport == "compressed" else args.encoding
    print(
        f"cam_node benchmark: {len(sides)} camera(s) {w}x{h} {what} at {args.rate:g} Hz, "
        f"{args.duration:g} s measured after {args.warmup:g} s warm-up, overlays "
        f"{'subscribed' if args.overlay else 'off'}, "
        f"{'pinned to CPU 0 / 1' if args.pin else 'not pinned'}, "
        f"{os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} (at the end)"
    )
    if args.overlay:
        print(f"  node drew an overlay for {overlay_share:.0%} of decided frames; core alone too")
    for side in sides:
        stamps = set(sent[side])
        mine = [r for r in got[side][n0.get(side, 0) :] if r[0] in stamps]
        lat = [(arr - st) / 1e6 for st, arr, _ in mine]
        node_ms = [ms for _, _, ms in mine]
        n_sent, n_dec = len(stamps), len(mine)
        cpu_ms = (cpu1[side] - cpu0[side]) * 1e3 / max(1, n_dec)
        d = diag.get(side, {})
        print(
            f"  {side}: sent {n_sent} ({n_sent / args.duration:.1f} Hz), decisions {n_dec} "
            f"({n_dec / args.duration:.1f} Hz), drop rate {1 - n_dec / max(1, n_sent):.1%} "
            f"[node: superseded {d.get('drops_superseded', '?')}, stale {d.get('drops_stale', '?')}, "
            f"decode {d.get('drops_decode_error', '?')}]"
        )
        print(
            f"    latency stamp->decision received: p50 {_pct(lat, 50):.1f} ms, "
            f"p99 {_pct(lat, 99):.1f} ms; node receipt->publish p50 {_pct(node_ms, 50):.1f} ms, "
            f"p99 {_pct(node_ms, 99):.1f} ms"
        )
        print(
            f"    node CPU per decided frame {cpu_ms:.1f} ms vs core alone {core_cpu_ms:.1f} ms "
            f"CPU ({core_wall_ms:.1f} ms wall): ratio {cpu_ms / core_cpu_ms:.2f}; vs core alone "
            f"at {args.rate:g} Hz {paced_cpu_ms:.1f} ms: ratio {cpu_ms / paced_cpu_ms:.2f}"
        )
        split = {
            g: (threads1[side][g] - threads0[side][g]) * 1e3 / max(1, n_dec) for g in THREAD_GROUPS
        }
        print(
            "    of which, per decided frame: "
            + ", ".join(f"{g} threads {ms:.2f} ms" for g, ms in split.items())
            + f"; worker beyond the core alone at {args.rate:g} Hz: "
            f"{split['worker'] - paced_cpu_ms:+.2f} ms"
        )
    print(f"  camera simulator (this process) CPU: {self_cpu / args.duration:.0%} of one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
