"""The ``cam_node`` node: camera image in, lane-change decision, CAM overlays and diagnostics out.

Threads: one worker thread waits for the camera, takes the newest frame itself, decodes it, runs
the core and publishes (:mod:`cam_node.camera_input`); the executor runs the diagnostics timer
and the parameter services only. Inference therefore never blocks the executor, a camera frame
never passes through the executor's Python, and a frame that waited while a newer one arrived is
dropped (``superseded``, the subscription keeps the newest only) instead of queued.

The camera subscription is ``raw=True``: the worker takes the serialized message into a buffer
kept across frames (:mod:`cam_node.serialized_take`) without building a Python message, and
:mod:`cam_node.convert` reads the pixels in place; the image outputs are published serialized
too (README "Performance").
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from gapcam_msgs.msg import LaneChangeDecision
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.impl.rcutils_logger import RcutilsLogger
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSCompatibility, qos_check_compatible
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from cam_node import convert, diagnostics
from cam_node.camera_input import CameraInput, Taken
from cam_node.cpu_affinity import parse_cpu_list, pin_process, require_available
from cam_node.os_thread import WORKER_THREAD, set_os_thread_name
from cam_node.params import BY_NAME, PARAMS, descriptor
from cam_node.paths import resolve_model
from cam_node.qos import image_input_qos, output_qos
from cam_node.shutdown import StopRequest
from cam_node.stats import StreamStats
from gapcam.backends.factory import tensorrt_available
from gapcam.errors import GapcamError, ImageDecodeError
from gapcam.node_interface import (
    COMPRESSED_SUFFIX,
    DIAGNOSTICS_TOPIC,
    INPUT_TOPIC,
    NODE_NAME,
    OUTPUTS,
    StatusFields,
    diagnostic_values,
    status_name,
)
from gapcam.node_settings import NodeSettings
from gapcam.overlay import cam_mono8
from gapcam.pipeline import Pipeline
from gapcam.preprocess import decode_frame, set_opencv_threads
from gapcam.replay.bag_io import COMPRESSED_IMAGE, IMAGE
from gapcam.stream import StreamProcessor, overlay_size

#: Smoother key: one node serves one camera.
_CAMERA = "camera"

#: Pause after the middleware failed to hand over a frame, before waiting for the next one.
_TAKE_RETRY_S = 0.1

__all__ = ["DIAGNOSTICS_TOPIC", "OUTPUTS", "CamNode", "main"]


class CamNode(Node):
    """Thin ROS shell over :class:`gapcam.stream.StreamProcessor`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        for spec in PARAMS:
            self.declare_parameter(spec.name, spec.default, descriptor(spec))
        p = {spec.name: self.get_parameter(spec.name).value for spec in PARAMS}
        for spec in PARAMS:
            problem = spec.check(p[spec.name])
            if problem:
                raise GapcamError(problem)
        self._p = p
        self._cpus = parse_cpu_list(str(p["cpu_affinity"]))  # its syntax was checked above
        require_available(self._cpus)
        self._settings = NodeSettings.from_params(p)

        model = resolve_model(p["model_path"])
        threads = int(p["threads"])
        set_opencv_threads(threads)
        backend_kwargs = {"threads": threads} if threads and model.suffix == ".onnx" else {}
        pipeline = Pipeline.from_model(
            model,
            p["backend"],
            backend_kwargs=backend_kwargs,
            cam_threshold=self._settings.cam_threshold,
            cam_class=self._settings.cam_class,
        )
        self._proc = StreamProcessor(
            pipeline, self._settings.smoothing, self._settings.fallback_class
        )
        backend = pipeline.backend
        self.get_logger().info(
            f"{backend.describe()}, precision {backend.precision}, model {model}, "
            f"CAM {pipeline.cam_class} at {pipeline.cam_threshold:g} of its maximum "
            f"(TensorRT {'available' if tensorrt_available() else 'not installed here'}; "
            f"model id {backend.model_id})"
        )

        self._stats = StreamStats(window_s=max(2.0, self._settings.diagnostics_period_s))
        self._last_overlay = 0.0
        self._last_frame_at: float | None = None
        self._prev_snapshot: dict | None = None
        self._hardware_id = ""
        self._unmatched = ""  #: why a publisher of the input is not matched (last period)

        out_img = output_qos(1)
        decision, overlay, overlay_jpeg, cam = (f"~/{name}" for name in OUTPUTS)
        self._pub_decision = self.create_publisher(LaneChangeDecision, decision, output_qos(10))
        self._pub_overlay = self.create_publisher(Image, overlay, out_img)
        self._pub_overlay_jpeg = self.create_publisher(CompressedImage, overlay_jpeg, out_img)
        self._pub_cam = self.create_publisher(Image, cam, out_img)
        self._pub_diag = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, output_qos(10))

        qos = self._input_qos = image_input_qos(p["qos.reliability"], int(p["qos.depth"]))
        base = self.resolve_topic_name(INPUT_TOPIC)
        self._compressed = p["input_transport"] == "compressed"
        if self._compressed:
            self._input_topic = f"{base}{COMPRESSED_SUFFIX}"
            msg_type, self._input_type = CompressedImage, COMPRESSED_IMAGE
        else:
            self._input_topic = base
            msg_type, self._input_type = Image, IMAGE
        self._input = CameraInput(self, msg_type, self._input_topic, qos)
        self.get_logger().info(
            f"input {self._input_topic} ({p['input_transport']}, {p['qos.reliability']}, "
            f"depth {p['qos.depth']}, taken by the worker); "
            f"outputs {self.resolve_topic_name('~/decision')}, "
            f"{self.resolve_topic_name('~/cam_overlay')}[/compressed], "
            f"{self.resolve_topic_name('~/cam')}"
        )

        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._diag_timer = self.create_timer(
            self._settings.diagnostics_period_s, self._publish_diagnostics
        )
        self._worker = threading.Thread(target=self._work, name=WORKER_THREAD, daemon=True)
        self._worker.start()
        if self._cpus:  # last: every thread of the process exists now, later ones inherit it
            pin_process(self._cpus)
            self.get_logger().info(f"pinned to CPU {', '.join(map(str, sorted(self._cpus)))}")

    # ---- executor side: parameters and diagnostics ------------------------------------------

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Validate run-time changes as a whole, then apply them (rclpy checked type and range)."""
        new = dict(self._p)
        for param in params:
            spec = BY_NAME.get(param.name)
            if spec is None:
                continue
            if spec.read_only:  # rclpy refuses these already; keep the reason explicit
                return SetParametersResult(successful=False, reason=f"{param.name} is read-only")
            problem = spec.check(param.value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
            new[param.name] = param.value
        try:
            settings = NodeSettings.from_params(new)
        except GapcamError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self._p, self._settings = new, settings
        self._proc.set_smoothing(settings.smoothing)
        self._proc.pipeline.set_cam_threshold(settings.cam_threshold)
        return SetParametersResult(successful=True)

    def _check_input_publishers(self) -> int:
        """Camera publishers matched with the input; logs once why others on the topic are not
        (the warning rclpy's default QoS event handler would give; see ``cam_node.camera_input``).
        """
        matched = self._input.subscription.get_publisher_count()
        offered = [
            diagnostics.OfferedInput(
                node=_endpoint_node(i.node_namespace, i.node_name),
                topic_type=i.topic_type,
                qos_compatible=compatible != QoSCompatibility.ERROR,
                qos_reason=reason,
            )
            for i in self.get_publishers_info_by_topic(self._input_topic)
            for compatible, reason in [qos_check_compatible(i.qos_profile, self._input_qos)]
        ]
        unmatched = diagnostics.unmatched_reason(offered, matched, self._input_type)
        if unmatched and unmatched != self._unmatched:
            self.get_logger().warning(
                f"a publisher of {self._input_topic} is not matched: {unmatched}"
            )
        self._unmatched = unmatched
        return matched

    def _publish_diagnostics(self) -> None:
        snap = self._stats.snapshot()
        idle = None if self._last_frame_at is None else time.monotonic() - self._last_frame_at
        publishers = self._check_input_publishers()
        level, message = diagnostics.level_and_message(
            snap, self._prev_snapshot, idle, publishers, self._unmatched
        )
        self._prev_snapshot = snap
        backend = self._proc.pipeline.backend
        values = diagnostic_values(
            snap,
            input_topic=self._input_topic,
            input_transport=self._p["input_transport"],
            backend=backend.name,
            precision=backend.precision,
            model_id=backend.model_id,
            input_publishers=publishers,
            decision_subscribers=self._pub_decision.get_subscription_count(),
            image_subscribers=sum(
                pub.get_subscription_count()
                for pub in (self._pub_overlay, self._pub_overlay_jpeg, self._pub_cam)
            ),
        )
        header = Header(stamp=self.get_clock().now().to_msg())
        self._pub_diag.publish(
            diagnostics.diagnostic_array(
                header,
                StatusFields(
                    level=level,
                    name=status_name(self.get_fully_qualified_name()),
                    message=message,
                    hardware_id=self._hardware_id or self._input_topic,
                    values=values,
                ),
            )
        )

    # ---- worker side: decode, infer, publish ---------------------------------------------

    def _work(self) -> None:
        set_os_thread_name(WORKER_THREAD)  # for top -H, perf and the bench's CPU breakdown
        while True:
            try:
                item = self._input.take_newest()
            except Exception as exc:  # the middleware failed to hand over a frame: keep going
                self._stats.frame_in()
                self._stats.drop("decode_error", f"taking the frame failed: {exc}")
                self.get_logger().error(
                    f"taking a camera frame failed: {type(exc).__name__}: {exc}",
                    throttle_duration_sec=self._settings.error_throttle_s,
                )
                time.sleep(_TAKE_RETRY_S)  # a failure that repeats must not spin a core
                continue
            if item is None:
                return
            received_at = _received_at(item)
            self._last_frame_at = time.monotonic()
            for _ in range(item.skipped):
                self._stats.frame_in()
                self._stats.drop("superseded")
            self._stats.frame_in()
            try:
                self._handle(item, received_at)
            except Exception as exc:  # the worker must outlive any single bad frame
                self._stats.drop("inference_error", f"{type(exc).__name__}: {exc}")
                self.get_logger().error(
                    f"frame failed: {type(exc).__name__}: {exc}",
                    throttle_duration_sec=self._settings.error_throttle_s,
                )

    def _handle(self, item: Taken, received_at: float) -> None:
        try:
            stamp = convert.input_header(item.msg).stamp_ns
        except ImageDecodeError as exc:
            self._drop_bad_frame(exc)
            return
        max_age = self._settings.max_age_s
        age_ms = (self.get_clock().now().nanoseconds - stamp) / 1e6 if stamp else 0.0
        if max_age > 0 and age_ms > max_age * 1e3:
            self._stats.drop("stale", f"frame {age_ms:.0f} ms old > max_age_s {max_age:g}")
            self.get_logger().warning(
                f"dropping stale frames ({age_ms:.0f} ms old > max_age_s {max_age:g}); "
                "bag playback needs --clock and use_sim_time:=true",
                throttle_duration_sec=self._settings.error_throttle_s,
            )
            return
        try:
            max_pixels = self._settings.max_pixels
            if self._compressed:
                frame = convert.frame_from_compressed(
                    item.msg, self._proc.pipeline.card.input, max_pixels
                )
            else:
                frame = convert.frame_from_raw(item.msg, max_pixels)
        except ImageDecodeError as exc:
            self._drop_bad_frame(exc)
            return
        self._hardware_id = frame.header.frame_id
        out = self._proc.process(
            _CAMERA,
            frame.image,
            stamp,
            frame.header.frame_id,
            received_at,
            order=frame.order,
            frame_size=frame.frame_size,
        )
        latency_ms = (time.perf_counter() - received_at) * 1e3
        self._pub_decision.publish(convert.decision_cdr(frame.header, out, latency_ms))
        now_ns = self.get_clock().now().nanoseconds
        self._stats.decision_out(
            latency_ms, (now_ns - stamp) / 1e6 if stamp else latency_ms, out.decision.label
        )
        self._publish_overlays(frame, out)

    def _drop_bad_frame(self, exc: ImageDecodeError) -> None:
        self._stats.drop("decode_error", str(exc))
        self.get_logger().error(
            f"bad frame dropped: {exc}",
            throttle_duration_sec=self._settings.error_throttle_s,
        )

    def _publish_overlays(self, frame: convert.Frame, out) -> None:
        """Debug images only while someone looks, and at most ``overlay.max_rate_hz``."""
        want_raw = self._pub_overlay.get_subscription_count() > 0
        want_jpeg = self._pub_overlay_jpeg.get_subscription_count() > 0
        want_overlay = want_raw or want_jpeg
        want_cam = self._pub_cam.get_subscription_count() > 0
        if not (want_overlay or want_cam):
            self._stats.count("overlay_skipped_no_subscriber")
            return
        overlay_settings = self._settings.overlay
        rate = overlay_settings.max_rate_hz
        now = time.monotonic()
        if rate <= 0 or now - self._last_overlay < 1.0 / rate:
            self._stats.count("overlay_skipped_rate")
            return
        self._last_overlay = now
        if want_overlay:
            scale = overlay_settings.scale
            image = frame.image
            size = overlay_size(frame.frame_size, scale)
            if frame.data is not None and (image.shape[1] < size[0] or image.shape[0] < size[1]):
                # the decision's reduced decode is smaller than the overlay: decode it larger
                spec = self._proc.pipeline.card.input
                max_pixels = self._settings.max_pixels
                image = decode_frame(
                    frame.data, spec, frame.what, cover=size, max_pixels=max_pixels
                )[0]
            overlay = self._proc.render(
                image, out, alpha=overlay_settings.alpha, scale=scale, order=frame.order
            )
            self._stats.count("overlays_rendered")
            if want_raw:
                self._pub_overlay.publish(convert.bgr_image_cdr(frame.header, overlay))
            if want_jpeg:
                quality = overlay_settings.jpeg_quality
                self._pub_overlay_jpeg.publish(convert.jpeg_cdr(frame.header, overlay, quality))
        if want_cam:
            self._pub_cam.publish(
                convert.mono8_image_cdr(frame.header, cam_mono8(out.result.cam, frame.frame_size))
            )
            self._stats.count("cam_published")

    def close(self) -> None:
        """Stop the worker (it finishes the frame in hand) and release the runtime."""
        self._input.close()
        self._worker.join(timeout=5.0)
        if not self._worker.is_alive():  # else it may still read the frame: leave the buffer
            self._input.release()
        self._proc.pipeline.backend.close()


def _endpoint_node(namespace: str, name: str) -> str:
    """A graph endpoint's node, or "a publisher" while discovery has not named it yet."""
    if "_UNKNOWN_" in name:  # rmw's _NODE_NAME_UNKNOWN_ / _NODE_NAMESPACE_UNKNOWN_
        return "a publisher"
    return f"{namespace.rstrip('/')}/{name}"


def _received_at(item: Taken) -> float:
    """The frame's arrival on the ``time.perf_counter()`` clock: when DDS received it, if the rmw
    says (so the time it waited in the subscription's history counts as latency), else now."""
    now = time.perf_counter()
    if item.received_ns is None:
        return now
    waited_s = (time.time_ns() - item.received_ns) / 1e9
    return now - waited_s if 0.0 <= waited_s < 1.0 else now


def _startup_logger() -> RcutilsLogger:
    """The logger the node would have had (``<namespace>.cam_node``), for errors before it exists.

    A throw-away node picks up the same ``__ns``/``__node`` remaps, so with two cameras the FATAL
    line says which one failed (``[rear_left.cam_node]``), not just ``[cam_node]``.
    """
    try:
        probe = Node("cam_node", enable_rosout=False)  # the half-built node holds the rosout one
    except Exception:  # the context is already gone: the bare name still says what failed
        return get_logger("cam_node")
    logger = probe.get_logger()
    probe.destroy_node()
    return logger


def main(args: list[str] | None = None, stop: StopRequest | None = None) -> int:
    """Run the node until SIGINT/SIGTERM; returns the exit code.

    0 when stopped by a signal (at any point, any number of times: see :mod:`cam_node.shutdown`),
    2 with one FATAL line when the node cannot start (bad parameter, missing model).
    """
    stop = stop if stop is not None else StopRequest().install()
    # Installs rclpy's SIGINT/SIGTERM handlers, which shut the context down and then call `stop`'s.
    rclpy.init(args=args)  # not `with rclpy.init()`: that form is missing on Humble
    node = None
    code = 0
    try:
        if not stop.requested:
            node = CamNode()
        if not stop.requested:
            rclpy.spin(node)
    except (GapcamError, ValueError) as exc:  # bad parameter, missing model: one line
        if not stop.requested:
            _startup_logger().fatal(str(exc))
            code = 2
    except ExternalShutdownException:
        pass
    except Exception:
        if not stop.requested:  # a stop during start-up fails whatever needed the context: fine
            raise
    finally:
        stop.ignore()  # a second Ctrl-C (ros2 launch forwards one) must not interrupt this
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
