"""Offline replay of a rosbag2 through the node's code path, into an output bag and a report.

Every camera frame goes through :class:`gapcam.stream.StreamProcessor` - the class the ROS node
calls - with one smoother per camera, in header-stamp order per camera, and the decision message
is built by the node's own field functions. So what replay writes is what the node would have
published for the same frames (``latency_ms`` aside: it measures this machine).

The output bag gets, per camera, the live node's topics - ``<ns>/cam_node/decision``
(``gapcam_msgs/LaneChangeDecision``) and ``<ns>/cam_node/cam_overlay/compressed`` (JPEG CAM
overlay, every frame rather than rate-limited) - and optionally the input camera topic,
plus ``/diagnostics`` once per second of recorded time and the ground-truth topic when present.
All output messages are stamped with the input image's header stamp (the bag time as well), so
output and input line up in any player.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gapcam import node_interface
from gapcam.errors import GapcamError, ImageDecodeError
from gapcam.labels import unknown_labels_note
from gapcam.node_settings import NodeSettings
from gapcam.pipeline import Pipeline
from gapcam.replay import bag_io, messages
from gapcam.replay.collect import CameraStats, ChangeCollector, FrameRecord, Reorder
from gapcam.replay.topics import (
    DIAGNOSTICS_TOPIC,
    Camera,
    find_ground_truth,
    select_cameras,
)
from gapcam.shipped import default_model
from gapcam.stamps import stamp_ns
from gapcam.stream import StreamProcessor

log = logging.getLogger(__name__)


@dataclass
class ReplayOptions:
    """Everything that shapes a replay besides the input and output paths."""

    model: str | Path | None = None  #: None: the shipped model
    backend: str = "auto"
    topics: list[str] | None = None
    prefer: str = "raw"  #: transport when a camera is recorded raw and compressed
    storage: str = "mcap"
    distro: str = bag_io.DEFAULT_DISTRO
    copy_images: bool = True
    overlays: bool = True
    #: smoothing, CAM, overlay, diagnostics period and max_pixels (larger frames are refused
    #: undecoded): the node's settings (its parameter files give them,
    #: :func:`gapcam.replay.params.load_node_params`), so replay decides as it does
    settings: NodeSettings = field(default_factory=NodeSettings)
    reorder_window: int = 8
    ground_truth_topic: str | None = None
    report: bool = True
    progress: bool = True
    max_frames: int | None = None
    #: For a command that ends right after an interrupted replay (``gapcam replay``): once a stop
    #: was asked for, later signals stay absorbed instead of reaching the interpreter's default
    #: handler, where one landing during shutdown ends the process with a traceback (exit -2).
    absorb_signals_after_stop: bool = False


@dataclass
class ReplaySummary:
    """What a replay did; also written as ``summary.json`` in the report folder."""

    input_bag: str
    output_bag: str
    report_dir: str | None
    model_id: str
    cameras: dict[str, dict[str, Any]]
    frames: int
    skipped: int
    wall_s: float
    fps: float
    recorded_s: float
    realtime_factor: float
    status: str = "complete"  #: complete | truncated | interrupted | failed
    error: str | None = None
    accuracy: float | None = None
    #: Set when ground-truth labels are not (all) the model's classes (see unknown_labels_note).
    ground_truth_note: str | None = None
    records: list[FrameRecord] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "records"}
        return d


class ReplayInterrupted(KeyboardInterrupt):
    """Ctrl-C during replay; carries the summary of the (valid) partial output."""

    def __init__(self, summary: ReplaySummary) -> None:
        super().__init__("interrupted")
        self.summary = summary


def replay_bag(
    in_bag: str | Path,
    out_bag: str | Path,
    options: ReplayOptions,
    *,
    pipeline: Pipeline | None = None,
    on_frame: Callable[[FrameRecord], None] | None = None,
) -> ReplaySummary:
    """Replay ``in_bag`` into ``out_bag`` (+ report in ``<out_bag>_report/``).

    Raises :class:`GapcamError` (after closing the output) when the input turns out truncated or
    corrupt, and :class:`ReplayInterrupted` on Ctrl-C; in both cases the output bag and the
    report hold every frame replayed so far.
    """
    in_bag, out_bag = Path(in_bag), Path(out_bag)
    if out_bag.exists():
        raise GapcamError(f"{out_bag}: already exists; choose a new output path or delete it")
    reader = bag_io.open_reader(in_bag)
    try:
        topics = bag_io.list_topics(reader)
        cameras = select_cameras(topics, options.topics, options.prefer)
        gt_topic = find_ground_truth(topics, options.ground_truth_topic)
        if pipeline is None:
            if options.model is None:
                options = replace(options, model=default_model())
            pipeline = Pipeline.from_model(
                options.model,
                options.backend,
                cam_class=options.settings.cam_class,
                cam_threshold=options.settings.cam_threshold,
                fallback_class=options.settings.fallback_class,
            )
        job = _Replay(reader, in_bag, out_bag, cameras, gt_topic, pipeline, options, on_frame)
        return job.run()
    finally:
        reader.close()


class _Replay:
    """One replay run: reads, reorders, processes and writes; state lives here, not in globals."""

    def __init__(
        self,
        reader: Any,
        in_bag: Path,
        out_bag: Path,
        cameras: list[Camera],
        gt_topic: str | None,
        pipeline: Pipeline,
        opt: ReplayOptions,
        on_frame: Callable[[FrameRecord], None] | None,
    ) -> None:
        self.reader, self.in_bag, self.out_bag = reader, in_bag, out_bag
        self.cameras = {c.topic: c for c in cameras}
        self.gt_topic = gt_topic
        self.opt = opt
        self.on_frame = on_frame
        self.processor = StreamProcessor(
            pipeline, opt.settings.smoothing, opt.settings.fallback_class
        )
        self.store = bag_io.typestore(opt.distro)
        self.collector = ChangeCollector(self.processor)
        self.reorder = {t: Reorder(opt.reorder_window) for t in self.cameras}
        self.stats = {c.base: CameraStats() for c in cameras}
        self.records: list[FrameRecord] = []
        self.truth: dict[tuple[str, int], str] = {}
        self.t0_ns: int | None = None
        self.frames = 0
        self.period_ns = int(opt.settings.diagnostics_period_s * 1e9)

    # ------------------------------------------------------------------------------ main loop
    def run(self) -> ReplaySummary:
        """Stream, then always: process the held frames, close the output, write the report.

        Signals are taken over *before* the output bag exists and given back only after it is
        closed and the report written (see :class:`_StopOnSignal`), so no Ctrl-C can leave a bag
        without its ``metadata.yaml`` or an mcap without its footer.
        """
        conns = [
            c
            for c in self.reader.connections
            if c.topic in self.cameras or c.topic == self.gt_topic
        ]
        total = sum(c.count for c in self.cameras.values())
        if self.opt.max_frames:
            total = min(total, self.opt.max_frames)
        with _StopOnSignal(self.opt.absorb_signals_after_stop) as stop:
            writer = bag_io.BagWriter(self.out_bag, self.opt.storage, distro=self.opt.distro)
            self.writer = writer
            status, error = "complete", None
            self.bar = bar = _progress(total, self.opt.progress)
            start = time.perf_counter()
            try:
                writer.set_custom_data("gapcam.replay.input", str(self.in_bag))
                writer.set_custom_data("gapcam.model_id", self.processor.pipeline.backend.model_id)
                writer.set_custom_data("gapcam.cameras", ",".join(self.cameras))
                status, error = self._stream(conns, stop)
                # Frames held back for stamp order were read (and copied): decide them too.
                for topic, buf in self.reorder.items():
                    for stamp, item in buf.drain():
                        self._process(self.cameras[topic], stamp, item)
            except KeyboardInterrupt:  # raised by a callback (on_frame) rather than a signal
                status = "interrupted"
            except Exception as exc:  # a bug or a runtime failure: keep what was written
                status, error = "failed", f"{type(exc).__name__}: {bag_io.one_line(exc)}"
                log.debug("replay failed", exc_info=True)
            finally:
                stop.closing()
                wall = time.perf_counter() - start
                bar.close()
                for cam in self.cameras.values():
                    self._diagnostics(cam, force=True)
                writer.close()
            if stop.requested and status == "complete":
                status = "interrupted"
            summary = self._summary(wall, status, error)
            if self.opt.report:
                self._write_report(summary)
        return self._outcome(summary)

    def _write_report(self, summary: ReplaySummary) -> None:
        """The report of what was replayed; a failure here costs the report, not the bag."""
        from gapcam.replay.report import write_report

        try:
            summary.report_dir = str(write_report(summary, self.collector, self.processor.classes))
        except Exception as exc:  # disk full, a plotting failure: one line, the bag stays
            print(
                f"gapcam replay: warning: no report written ({type(exc).__name__}: "
                f"{bag_io.one_line(exc)})",
                file=sys.stderr,
            )

    def _stream(self, conns: list[Any], stop: _StopOnSignal) -> tuple[str, str | None]:
        """Read, copy and process messages until the end, a signal, max_frames or a bad record."""
        try:
            for conn, bag_ts, raw in bag_io.iter_messages(self.reader, conns):
                if conn.topic == self.gt_topic:
                    self._ground_truth(conn, bag_ts, raw)
                else:
                    self._receive(conn, bag_ts, raw)
                if stop.requested:
                    return "interrupted", None
                if self.opt.max_frames and self.frames >= self.opt.max_frames:
                    break
        except bag_io.BagCorruptError as exc:
            return "truncated", str(exc)
        return "complete", None

    def _outcome(self, summary: ReplaySummary) -> ReplaySummary:
        """The summary, or the one-line error that says what went wrong and what is kept."""
        kept = f"{self.out_bag} is valid and holds those frames" + (
            f", report in {summary.report_dir}" if summary.report_dir else ""
        )
        if summary.status == "interrupted":
            raise ReplayInterrupted(summary)
        if summary.status == "truncated":
            raise GapcamError(
                f"{self.in_bag}: bag is truncated or corrupt after {summary.frames} frames "
                f"({summary.error}); {kept}"
            )
        if summary.status == "failed":
            raise GapcamError(
                f"replay of {self.in_bag} stopped after {summary.frames} frames by "
                f"{summary.error}; {kept}"
            )
        if summary.frames == 0:
            last = next((s.last_error for s in self.stats.values() if s.last_error), "")
            raise GapcamError(
                f"{self.in_bag}: no frame could be replayed ({summary.skipped} skipped"
                + (f"; last: {last}" if last else "")
                + "); check the camera topics and their encoding"
                + (f"; report in {summary.report_dir}" if summary.report_dir else "")
            )
        return summary

    def _receive(self, conn: Any, bag_ts: int, raw: bytes) -> None:
        """Deserialise a camera message, copy it to the output, queue it for stamp order."""
        cam = self.cameras[conn.topic]
        try:
            msg = self.store.deserialize_cdr(raw, cam.msgtype)
        except Exception as exc:  # a corrupt record: skip it, like a bad frame on the wire
            self._skip(cam, f"undecodable {cam.msgtype} message: {bag_io.one_line(exc)}")
            return
        stamp = stamp_ns(msg.header) or bag_ts  # zero stamps: fall back to bag time
        if self.opt.copy_images:
            self.writer.write_raw(
                cam.topic, cam.msgtype, raw, stamp, conn.msgdef.data or None, conn.digest or None
            )
        for due_stamp, item in self.reorder[cam.topic].push(stamp, msg):
            self._process(cam, due_stamp, item)

    def _process(self, cam: Camera, stamp: int, msg: Any) -> None:
        if self.opt.max_frames and self.frames >= self.opt.max_frames:
            return
        received = time.perf_counter()
        try:
            image = messages.image_from_msg(
                cam.msgtype, msg, what=cam.topic, max_pixels=self.opt.settings.max_pixels
            )
        except ImageDecodeError as exc:
            self._skip(cam, str(exc))
            return
        if self.t0_ns is None:
            self.t0_ns = stamp
        out = self.processor.process(cam.base, image, stamp, msg.header.frame_id, received)
        self.writer.write(
            cam.decision_topic, bag_io.DECISION, messages.decision_msg(self.store, out), stamp
        )
        if self.opt.overlays:
            look = self.opt.settings.overlay
            overlay = self.processor.render(image, out, alpha=look.alpha, scale=look.scale)
            self.writer.write(
                cam.overlay_topic,
                bag_io.COMPRESSED_IMAGE,
                messages.compressed_image_msg(
                    self.store, stamp, out.frame_id, overlay, look.jpeg_quality, "jpeg"
                ),
                stamp,
            )
        self.collector.add(cam.base, image, out, self.t0_ns)
        res = out.result
        record = FrameRecord(
            camera=cam.base,
            frame_id=out.frame_id,
            stamp_ns=stamp,
            decision=res.classes.index(out.decision.label),
            raw_decision=res.class_index,
            probabilities=tuple(round(float(p), 5) for p in res.probabilities),
            smoothed=tuple(round(float(p), 5) for p in out.decision.probabilities),
            latency_ms=round(out.latency_ms, 3),
            truth=self.truth.get((out.frame_id, stamp)),
        )
        self.records.append(record)
        self.stats[cam.base].add(stamp, out.latency_ms, out.decision.label)
        self.stats[cam.base].frame_id = out.frame_id
        self.frames += 1
        self.bar.update(1)
        if self.on_frame is not None:
            self.on_frame(record)
        self._diagnostics(cam)

    def _skip(self, cam: Camera, reason: str) -> None:
        st = self.stats[cam.base]
        st.skipped += 1
        st.last_error = reason
        self.bar.update(1)
        if st.skipped <= 3:
            print(f"gapcam replay: warning: {cam.topic}: skipped frame: {reason}", file=sys.stderr)

    def _ground_truth(self, conn: Any, bag_ts: int, raw: bytes) -> None:
        self.writer.write_raw(
            conn.topic, conn.msgtype, raw, bag_ts, conn.msgdef.data or None, conn.digest or None
        )
        try:
            d = json.loads(self.store.deserialize_cdr(raw, "std_msgs/msg/String").data)
            self.truth[(str(d["frame_id"]), int(d["stamp_ns"]))] = str(d["label"])
        except Exception as exc:  # a malformed label must not stop a replay
            log.warning("ignoring malformed ground-truth message: %s", bag_io.one_line(exc))

    # ---------------------------------------------------------------------------- diagnostics
    def _diagnostics(self, cam: Camera, force: bool = False) -> None:
        """One ``DiagnosticArray`` per camera and ``diagnostics_period_s`` of recorded time."""
        st = self.stats[cam.base]
        if st.last_stamp is None:
            return
        if st.next_report_ns is None:
            st.next_report_ns = st.last_stamp + self.period_ns
        if not force and st.last_stamp < st.next_report_ns:
            return
        st.next_report_ns = st.last_stamp + self.period_ns
        window = st.take_window()
        if not window and not force:
            return
        level = node_interface.DIAG_WARN if st.skipped else node_interface.DIAG_OK
        text = f"{st.decision}; {st.skipped} frame(s) skipped" if st.skipped else st.decision
        backend = self.processor.pipeline.backend
        rate = st.rate_hz()  # over recorded time: every frame in gets a decision or is skipped
        drops = {f"drops_{c}": 0 for c in node_interface.DROP_CAUSES}
        drops["drops_decode_error"] = st.skipped
        snapshot = {
            "rate_in_hz": rate,
            "rate_out_hz": rate,
            "latency_p50_ms": float(np.percentile(window, 50)) if window else 0.0,
            "latency_p99_ms": float(np.percentile(window, 99)) if window else 0.0,
            "frames_in": st.frames + st.skipped,
            "decisions_out": st.frames,
            **drops,
            "drops_total": sum(drops.values()),
            "last_decision": st.decision,
            "last_error": st.last_error,
        }
        values = node_interface.diagnostic_values(
            snapshot,
            input_topic=cam.topic,
            input_transport="compressed" if cam.msgtype == bag_io.COMPRESSED_IMAGE else "raw",
            backend=backend.name,
            precision=backend.precision,
            model_id=backend.model_id,
            source="gapcam replay",
            latency_max_ms=max(window) if window else 0.0,
            out_of_order_frames=self.reorder[cam.topic].late,
        )
        status = node_interface.StatusFields(
            level=level,
            name=node_interface.status_name(
                f"{cam.namespace.rstrip('/')}/{node_interface.NODE_NAME}", replay=True
            ),
            message=text,
            hardware_id=st.frame_id or cam.topic,
            values=values,
        )
        msg = messages.diagnostic_array(self.store, st.last_stamp, [status])
        self.writer.write(DIAGNOSTICS_TOPIC, bag_io.DIAGNOSTIC_ARRAY, msg, st.last_stamp)

    # -------------------------------------------------------------------------------- summary
    def _summary(self, wall: float, status: str, error: str | None) -> ReplaySummary:
        cams: dict[str, dict[str, Any]] = {}
        span = 0.0
        for cam in self.cameras.values():
            st = self.stats[cam.base]
            rec_s = (st.last_stamp - st.first_stamp) / 1e9 if st.frames and st.last_stamp else 0.0
            span = max(span, rec_s)
            cams[cam.base] = {
                "topic": cam.topic,
                "type": cam.msgtype,
                # what the output bag holds, even if an interrupt fell between two statements
                "frames": self.writer.counts.get(cam.decision_topic, 0),
                "skipped": st.skipped,
                "out_of_order": self.reorder[cam.topic].late,
                "decision_changes": self.collector.changes.get(cam.base, 0),
                "input_rate_hz": round(st.rate_hz(), 3),
                "latency_mean_ms": round(st.latency_sum / st.frames, 3) if st.frames else None,
                "latency_max_ms": round(st.latency_max, 3),
                "decision_topic": cam.decision_topic,
                "overlay_topic": cam.overlay_topic if self.opt.overlays else None,
            }
        for r in self.records:  # labels may be stored after their frame: resolve at the end
            if r.truth is None:
                r.truth = self.truth.get((r.frame_id, r.stamp_ns))
        classes = self.processor.classes
        note = unknown_labels_note((r.truth for r in self.records), classes)
        if note:
            print(f"gapcam replay: {note}", file=sys.stderr)
        labelled = [r for r in self.records if r.truth is not None and r.truth in classes]
        written = sum(c["frames"] for c in cams.values())
        acc = (
            sum(classes[r.decision] == r.truth for r in labelled) / len(labelled)
            if labelled
            else None
        )
        return ReplaySummary(
            input_bag=str(self.in_bag),
            output_bag=str(self.out_bag),
            report_dir=None,
            model_id=self.processor.pipeline.backend.model_id,
            cameras=cams,
            frames=written,
            skipped=sum(s.skipped for s in self.stats.values()),
            wall_s=round(wall, 3),
            fps=round(written / wall, 2) if wall > 0 else 0.0,
            recorded_s=round(span, 3),
            realtime_factor=round(span / wall, 3) if wall > 0 else 0.0,
            status=status,
            error=error,
            accuracy=None if acc is None else round(acc, 4),
            ground_truth_note=note,
            records=self.records,
        )


class _StopOnSignal:
    """Ctrl-C / SIGTERM end the replay *between* messages, never inside a bag write.

    A ``KeyboardInterrupt`` raised at an arbitrary bytecode can land inside a storage write or
    ``writer.close()`` and leave a bag without ``metadata.yaml`` or an mcap without its footer.
    So, from before the output bag is created until it is closed and the report written: the
    first signal only sets a flag that the loop checks after each message (the frames already
    read are still processed, then everything is closed); a second one is refused with a line
    on stderr; a third forces the exit (the output may then be incomplete, as that line says).
    Only installed on the main thread (signals are delivered there). With ``absorb_after_stop``
    (a command that exits right after an interrupted replay) the handlers are not given back
    once a stop was asked for: later presses are ignored while the process ends.
    """

    #: Signals up to this count are absorbed; the next one raises ``KeyboardInterrupt``.
    FORCE_AT = 3

    def __init__(self, absorb_after_stop: bool = False) -> None:
        self.absorb_after_stop = absorb_after_stop
        self.requested = False
        self.count = 0
        self._closing = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def closing(self) -> None:
        """From now on only the output is being finished: say so if the user presses again."""
        self._closing = True

    def _handle(self, signum: int, frame: object) -> None:
        self.count += 1
        self.requested = True
        if self.count >= self.FORCE_AT:
            raise KeyboardInterrupt
        if self.count == 2:
            what = "closing the output bag" if self._closing else "finishing the frames in hand"
            _say(
                f"gapcam replay: {what} so that it stays readable; "
                "press Ctrl-C once more to abandon it (the output may then be incomplete)"
            )

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            keep = self.absorb_after_stop and self.requested and self.count < self.FORCE_AT
            signal.signal(sig, signal.SIG_IGN if keep else handler)


def _say(line: str) -> None:
    """One line on stderr from a signal handler (``os.write``: no buffered-I/O re-entry)."""
    with contextlib.suppress(OSError):
        os.write(2, (line + "\n").encode())


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit="frame",
        desc="replay",
        disable=not enabled,
        dynamic_ncols=True,
        leave=False,
    )
