"""Test harness for cam_node over real DDS: the node runs as a subprocess, the test publishes.

Nothing of ROS is mocked: the node is ``python -m cam_node`` with the Fast DDS localhost profile,
and this process talks to it with rclpy (one context, one test node, spun on a thread so that
subscriptions fill while a test waits). :class:`Camera` keeps what was sent, and
:meth:`Camera.verify` recomputes every received decision with the ROS-free core in the order the
node published them, so a decision is checked field by field against what the core says for the
very image the node received (smoothing state included).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from gapcam_msgs.msg import LaneChangeDecision
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.srv import DescribeParameters, GetParameters, ListParameters, SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from gapcam.decision import SmoothingConfig
from gapcam.ros_image import encode_bgr, image_to_bgr
from gapcam.stream import StreamProcessor, decision_fields, roi_fields

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "ros2_ws" / "src" / "cam_node" / "config"
DEFAULT_YAML = CONFIG / "cam_node.yaml"
LOSSLESS = ("bgr8", "rgb8", "bgra8", "rgba8")
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


def wait_for(pred: Callable[[], Any], timeout: float, what: str, poll: float = 0.02) -> Any:
    """Poll ``pred`` until truthy; fail with ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


class Collector:
    """Every message of one topic, in arrival order (filled by the executor thread)."""

    def __init__(self, ros: RosHarness, msg_type: type, topic: str, qos: QoSProfile) -> None:
        self._lock = threading.Lock()
        self._msgs: list[Any] = []
        self.topic = topic
        self.sub = ros.node.create_subscription(msg_type, topic, self._on, qos)

    def _on(self, msg: Any) -> None:
        with self._lock:
            self._msgs.append(msg)

    @property
    def msgs(self) -> list[Any]:
        with self._lock:
            return list(self._msgs)

    def __len__(self) -> int:
        with self._lock:
            return len(self._msgs)


class RosHarness:
    """The test process's rclpy context, node and executor thread."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node("gapcam_test", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()
        self.diagnostics = Diagnostics(self)  #: every ``/diagnostics`` status since start

    def _spin(self) -> None:
        with contextlib.suppress(Exception):  # shutdown races end the spin; nothing to report
            self.executor.spin()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5)

    def collect(self, msg_type: type, topic: str, qos: QoSProfile = RELIABLE) -> Collector:
        return Collector(self, msg_type, topic, qos)

    def destroy(self, collector: Collector) -> None:
        self.node.destroy_subscription(collector.sub)

    def call(self, srv_type: type, name: str, request: Any, timeout: float = 10.0) -> Any:
        client = self.node.create_client(srv_type, name)
        try:
            wait_for(lambda: client.service_is_ready(), timeout, f"service {name}")
            future = client.call_async(request)
            wait_for(future.done, timeout, f"reply of {name}")
            return future.result()
        finally:
            self.node.destroy_client(client)

    # ---- parameters of another node, through its real parameter services -------------------

    def list_parameters(self, node: str) -> list[str]:
        return list(
            self.call(
                ListParameters, f"{node}/list_parameters", ListParameters.Request()
            ).result.names
        )

    def get_parameters(self, node: str, names: list[str]) -> dict[str, Any]:
        res = self.call(GetParameters, f"{node}/get_parameters", GetParameters.Request(names=names))
        return {
            n: Parameter.from_parameter_msg(ParameterMsg(name=n, value=v)).value
            for n, v in zip(names, res.values, strict=True)
        }

    def describe_parameters(self, node: str, names: list[str]) -> dict[str, Any]:
        res = self.call(
            DescribeParameters,
            f"{node}/describe_parameters",
            DescribeParameters.Request(names=names),
        )
        return {d.name: d for d in res.descriptors}

    def set_parameters(self, node: str, values: dict[str, Any]) -> list[Any]:
        req = SetParameters.Request(
            parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]
        )
        return list(self.call(SetParameters, f"{node}/set_parameters", req).results)


@dataclass
class NodeProcess:
    """``python -m cam_node`` as a subprocess, its log in a file."""

    namespace: str
    args: list[str]
    log_path: Path
    env: dict[str, str]
    proc: subprocess.Popen | None = None

    @property
    def name(self) -> str:
        return f"{self.namespace}/cam_node"

    def start(self) -> NodeProcess:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cam_node", "--ros-args", *self.args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=REPO,
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def check_alive(self) -> None:
        if not self.alive():
            raise AssertionError(
                f"cam_node {self.name} exited ({self.proc.returncode}):\n{self.log()[-3000:]}"
            )

    def stop(self) -> int | None:
        """SIGINT, as ros2 launch does; returns the exit code (``None`` if it had to be killed)."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                rc = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                rc = None
        self._log.close()
        return rc


def node_args(
    namespace: str, image_topic: str, params_files: list[Path], overrides: dict[str, Any]
) -> list[str]:
    """``--ros-args`` for a cam_node in ``namespace`` reading ``image_topic``."""
    args = ["-r", f"__ns:={namespace}", "-r", f"image:={image_topic}"]
    for f in params_files:
        args += ["--params-file", str(f)]
    for k, v in overrides.items():
        args += ["-p", f"{k}:={v}"]
    return args


def wait_node_side(
    ros: RosHarness,
    node: NodeProcess,
    camera_topic: str,
    decision_topic: str,
    since: float,
    timeout: float = 60.0,
) -> None:
    """Until ``node`` has matched every camera publisher and decision subscriber this process's
    graph shows (``input_publishers``, ``decision_subscribers`` on ``/diagnostics`` stamped
    after ``since``): our side of a match says nothing about the node's, and a best-effort frame
    or a volatile decision sent before the node's side is there is lost."""
    cameras = ros.node.count_publishers(camera_topic)
    listeners = ros.node.count_subscribers(decision_topic)
    ros.diagnostics.wait_until(
        node.name,
        lambda v: (
            int(v["input_publishers"]) >= cameras and int(v["decision_subscribers"]) >= listeners
        ),
        timeout,
        f"input_publishers >= {cameras} and decision_subscribers >= {listeners} "
        "(the node's side of both matches)",
        after=since,
    )


@dataclass
class Sent:
    image: np.ndarray  #: what the node should see after decoding (BGR)
    frame_id: str
    frame_size: tuple[int, int] | None = None  #: the frame's size when ``image`` is reduced


@dataclass
class Camera:
    """One camera topic feeding one cam_node, with the decisions it published and a reference."""

    ros: RosHarness
    node: NodeProcess
    topic: str
    pipeline: Any
    compressed: bool = False
    reliable_input: bool = False
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    frame_id: str = "camera"

    def __post_init__(self) -> None:
        ns = self.node.name
        self._created = time.time()  # a /diagnostics status showing our matches comes after this
        self.decisions = self.ros.collect(LaneChangeDecision, f"{ns}/decision")
        qos = RELIABLE if self.reliable_input else qos_profile_sensor_data
        if self.compressed:
            self.pub = self.ros.node.create_publisher(
                CompressedImage, f"{self.topic}/compressed", qos
            )
        else:
            self.pub = self.ros.node.create_publisher(Image, self.topic, qos)
        self.sent: dict[int, Sent] = {}
        self.outputs: dict[int, Any] = {}  #: stamp -> the reference's FrameOutput
        self.reference = StreamProcessor(self.pipeline, self.smoothing)
        self._verified = 0
        self._stamp = time.time_ns()

    # ---- start-up ---------------------------------------------------------------------------

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Node up, our image publisher and decision subscription matched with it, and the
        node's input and decision publisher matched with us.

        Discovery is two-sided: our publisher can see the node's subscription before the node's
        subscription knows our publisher (a best-effort frame sent in between is lost), and our
        decision subscription can see the node's publisher before that publisher knows us (a
        decision published in between never reaches us: volatile). The node reports its side
        (``input_publishers``, ``decision_subscribers`` on ``/diagnostics``, every period), so
        nothing here depends on how long discovery takes.
        """

        def ready() -> bool:
            self.node.check_alive()
            return (
                self.pub.get_subscription_count() > 0
                and self.decisions.sub.get_publisher_count() > 0
            )

        wait_for(ready, timeout, f"{self.node.name} to match {self.topic}")
        wait_node_side(
            self.ros, self.node, self.pub.topic_name, self.decisions.topic, self._created, timeout
        )

    # ---- sending ------------------------------------------------------------------------------

    def next_stamp(self) -> int:
        """Unique, increasing, close to now (the node drops frames older than max_age_s)."""
        self._stamp = max(self._stamp + 1_000_000, time.time_ns())
        return self._stamp

    def send(
        self,
        image: np.ndarray,
        encoding: str = "bgr8",
        *,
        stamp_ns: int | None = None,
        step_pad: int = 0,
        jpeg_quality: int = 90,
        frame_id: str | None = None,
    ) -> int:
        """Publish ``image`` (BGR) in ``encoding`` or as JPEG; returns its stamp (the key)."""
        import cv2

        from gapcam.preprocess import decode_frame

        stamp = self.next_stamp() if stamp_ns is None else stamp_ns
        frame_id = frame_id or self.frame_id
        if self.compressed:
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
            assert ok
            msg = CompressedImage(format="jpeg", data=buf.tobytes())
            # the core's decode for the model (reduced JPEG decode), as the node does it
            seen, frame_size = decode_frame(buf.tobytes(), self.pipeline.card.input)
        else:
            from gapcam.ros_image import BYTES_PER_PIXEL

            f = encode_bgr(
                image, encoding, step=image.shape[1] * BYTES_PER_PIXEL[encoding] + step_pad
            )
            msg = Image(**f)
            if encoding in LOSSLESS:  # the original: a conversion bug in the node must show
                seen = image
            else:  # what the (unit-tested) decoder recovers from a lossy encoding
                seen = image_to_bgr(
                    f["encoding"], f["width"], f["height"], f["step"], f["data"], f["is_bigendian"]
                )
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        msg.header.frame_id = frame_id
        self.sent[stamp] = Sent(seen, frame_id, frame_size if self.compressed else None)
        self.pub.publish(msg)
        return stamp

    def publish_raw(self, msg: Any) -> None:
        """Publish a hand-made (possibly broken) message as is."""
        self.pub.publish(msg)

    def publish_one_by_one(self, msgs: list[Any], diagnostics: Diagnostics) -> dict[str, Any]:
        """Publish hand-made (possibly broken) messages as they are, each once the node has taken
        the one before (its ``frames_in`` counts it), so the node's newest-frame take never
        merges two of them, however slow the machine. The node must have nothing of ours in
        flight. Returns the node's status that counted the last one.
        """
        taken = int(self.wait_accounting(diagnostics)["frames_in"])
        status: dict[str, Any] = {}
        for msg in msgs:
            self.publish_raw(msg)
            taken += 1
            status = diagnostics.wait_until(
                self.node.name,
                lambda v, n=taken: int(v["frames_in"]) >= n,
                timeout=10.0,
                what=f"frames_in >= {taken}",
            )
        return status

    def decision_for(self, stamp: int) -> LaneChangeDecision | None:
        for d in self.decisions.msgs:
            if d.header.stamp.sec * 1_000_000_000 + d.header.stamp.nanosec == stamp:
                return d
        return None

    def wait_decision(self, stamp: int, timeout: float = 15.0) -> LaneChangeDecision:
        def got() -> LaneChangeDecision | None:
            self.node.check_alive()
            return self.decision_for(stamp)

        return wait_for(got, timeout, f"decision for stamp {stamp} on {self.node.name}")

    def paced_then_burst(self, frames: list[np.ndarray], paced: int, burst: int) -> list[int]:
        """``paced`` frames at 30 Hz, then ``burst`` back to back (more than a node can take);
        waits for the burst's newest frame (always decided) and returns the stamps of our frames
        that were decided, in the order their decisions arrived."""
        sent = []
        for i in range(paced):
            sent.append(self.send(frames[i % len(frames)]))
            time.sleep(1 / 30)
        for i in range(burst):
            sent.append(self.send(frames[i % len(frames)]))
        self.wait_decision(sent[-1])
        ours = set(sent)
        got = [
            d.header.stamp.sec * 1_000_000_000 + d.header.stamp.nanosec for d in self.decisions.msgs
        ]
        return [s for s in got if s in ours]

    def wait_accounting(self, diagnostics: Diagnostics) -> dict[str, str]:
        """The node's ``/diagnostics`` once every frame it took is decided or counted as dropped.

        ``frames_in`` counts every frame of ours the node saw or missed: a frame a newer one
        replaced, in the node's reader or before it, shows as a gap in the publisher's sequence
        numbers, counted as ``superseded``. So across a test that waited for the decision of its
        last frame, ``frames_in`` grows by exactly the number of frames it sent.
        """
        diag = diagnostics.wait_until(
            self.node.name,
            lambda v: int(v["frames_in"]) == int(v["decisions_out"]) + int(v["drops_total"]),
            timeout=5.0,
            what="frames_in == decisions_out + drops_total",
        )
        assert int(diag["decisions_out"]) == len(self.decisions)
        return diag

    def send_and_wait(
        self, image: np.ndarray, encoding: str = "bgr8", **kw: Any
    ) -> LaneChangeDecision:
        return self.wait_decision(self.send(image, encoding, **kw))

    # ---- checking ----------------------------------------------------------------------------

    def set_reference_smoothing(self, smoothing: SmoothingConfig) -> None:
        self.smoothing = smoothing
        self.reference.set_smoothing(smoothing)

    def verify(self) -> int:
        """Check every decision received since the last call against the core; returns how many.

        The reference processes the same decoded images in the node's publication order, so the
        smoothed decision (which depends on history) must match too.
        """
        msgs = self.decisions.msgs
        for d in msgs[self._verified :]:
            stamp = d.header.stamp.sec * 1_000_000_000 + d.header.stamp.nanosec
            assert stamp in self.sent, f"decision for a stamp never sent: {stamp}"
            sent = self.sent[stamp]
            assert d.header.frame_id == sent.frame_id
            out = self.reference.process(
                "camera", sent.image, stamp, sent.frame_id, frame_size=sent.frame_size
            )
            self.outputs[stamp] = out
            want = decision_fields(out)
            assert d.decision == want["decision"] and d.decision_label == want["decision_label"]
            assert d.raw_decision == want["raw_decision"]
            assert list(d.class_names) == want["class_names"]
            assert d.model_id == want["model_id"]
            np.testing.assert_allclose(d.probabilities, want["probabilities"], atol=1e-5)
            np.testing.assert_allclose(
                d.smoothed_probabilities, want["smoothed_probabilities"], atol=1e-5
            )
            assert abs(d.confidence - want["confidence"]) < 1e-5
            box = roi_fields(out.result.box)
            got_box = {k: getattr(d.cam_box, k) for k in box}
            assert got_box == box, (got_box, box)
            assert 0.0 < d.latency_ms < 10_000.0
        n = len(msgs) - self._verified
        self._verified = len(msgs)
        return n


class Diagnostics:
    """The ``/diagnostics`` status of one node, as a dict of its key/values."""

    def __init__(self, ros: RosHarness) -> None:
        self.collector = ros.collect(DiagnosticArray, "/diagnostics")

    def statuses(self, node_name: str) -> list[tuple[float, Any]]:
        out = []
        for arr in self.collector.msgs:
            for s in arr.status:
                if s.name.startswith(f"{node_name}:"):
                    out.append((arr.header.stamp.sec + arr.header.stamp.nanosec * 1e-9, s))
        return out

    def latest(
        self, node_name: str, after: float | None = None, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Values of the first status of ``node_name`` stamped after ``after`` (default: now)."""
        after = time.time() if after is None else after

        def fresh() -> Any:
            found = [(t, s) for t, s in self.statuses(node_name) if t > after]
            return found[0] if found else None

        t, s = wait_for(fresh, timeout, f"a /diagnostics status of {node_name}")
        values: dict[str, Any] = {kv.key: kv.value for kv in s.values}
        values["_level"] = (
            int.from_bytes(s.level, "little") if isinstance(s.level, bytes) else int(s.level)
        )
        values["_message"] = s.message
        values["_hardware_id"] = s.hardware_id
        values["_stamp"] = t
        return values

    def wait_until(
        self,
        node_name: str,
        pred: Callable[[dict], bool],
        timeout: float,
        what: str,
        after: float | None = None,
    ) -> dict:
        """The first status stamped after ``after`` (default: now) that satisfies ``pred``; every
        status is looked at in order, so one published while the test was busy is not skipped."""
        end = time.monotonic() + timeout
        seen = time.time() if after is None else after
        last: dict = {}
        while time.monotonic() < end:
            last = self.latest(
                node_name, after=seen, timeout=max(0.1, end - time.monotonic() + 2.0)
            )
            if pred(last):
                return last
            seen = last["_stamp"]
        raise AssertionError(f"/diagnostics of {node_name} never showed {what}; last: {last}")


def scene(seed: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """A rear-side camera frame of ``size`` (w, h), BGR ``uint8``: a synthetic scene from
    :mod:`gapcam.synth` where available, else a drawn road with a vehicle-like box (varied by
    ``seed``, so that frames differ and a decision computed for the wrong frame shows)."""
    from gapcam.synth import render_scene

    return render_scene(seed, size=size)[0]


def env_for_nodes() -> dict[str, str]:
    return dict(os.environ)
