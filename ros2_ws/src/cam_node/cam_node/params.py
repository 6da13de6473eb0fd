"""Every setting of the node, declared once: name, default, description, range, run-time changeable.

The table is plain Python so that the tests can compare it with ``config/*.yaml`` and the README
table; :func:`descriptor` turns an entry into the ``ParameterDescriptor`` the node declares, with
an ``IntegerRange``/``FloatingPointRange`` that rclpy itself enforces on every set request.
Entries marked ``read_only`` are fixed when the node starts (model, backend, QoS, topics):
changing them needs a restart, and ROS rejects run-time sets of them.

Defaults of the settings that shape the output (smoothing, CAM, overlay, throttling) come from
the core's :class:`gapcam.node_settings.NodeSettings`, which replay reads too; this table adds
the ROS-only ones and the descriptions and ranges operators see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from cam_node.cpu_affinity import cpu_list_problem
from gapcam.cam import DEFAULT_CAM_THRESHOLD
from gapcam.node_settings import CARD_CAM_THRESHOLD, NO_FALLBACK_PARAM, NodeSettings

#: The core's defaults are the node's defaults (config/cam_node.yaml repeats them for operators;
#: tests check that the two agree).
_DEFAULT = NodeSettings().to_params()

Value = bool | int | float | str


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Value
    description: str
    range: tuple[float, float] | None = None  #: inclusive bounds for int and float parameters
    choices: tuple[str, ...] | None = None  #: allowed values of a string parameter
    read_only: bool = False  #: fixed at start-up
    #: a string parameter's own syntax check; such a parameter also takes a number (``-p
    #: cpu_affinity:=0`` arrives as an integer from the command line) and reads it as text
    syntax: Callable[[Value], str | None] | None = None

    def check(self, value: Value) -> str | None:
        """Why ``value`` is invalid (beyond type and range, which rclpy checks), or ``None``."""
        if self.choices is not None and value not in self.choices:
            return f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}"
        if self.syntax is not None:
            return self.syntax(value)
        return None


PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "model_path",
        "",
        "Model to run: an exported .onnx (with its .json card beside it) or a TensorRT .plan. "
        "Empty: the shipped models/lane_change.onnx. Relative paths: to the working directory, "
        "then the repository, then the package share directory.",
        read_only=True,
    ),
    ParamSpec(
        "backend",
        "auto",
        "Inference runtime: auto (TensorRT for a .plan, ONNX Runtime otherwise), onnxruntime or "
        "tensorrt. The choice is logged at start and reported on /diagnostics.",
        choices=("auto", "onnxruntime", "tensorrt"),
        read_only=True,
    ),
    ParamSpec(
        "threads",
        0,
        "CPU threads of inference (ONNX Runtime intra-op) and of OpenCV's image work "
        "(decode, resize, overlay); 0 = the libraries' defaults (all cores). Use 1 per node when "
        "several nodes share a small CPU: a thread pool's idle spinning costs more CPU per frame "
        "than it saves in latency.",
        range=(0, 64),
        read_only=True,
    ),
    ParamSpec(
        "cpu_affinity",
        "",
        "CPUs the node's process (all its threads) may run on, in taskset -c syntax: 0 | 0,2 | "
        "1-3. Empty: no pinning, the OS schedules. For a vehicle computer's CPU plan (cores "
        "isolated per sensor pipeline); README Performance has what it measured here.",
        read_only=True,
        syntax=cpu_list_problem,
    ),
    ParamSpec(
        "cam_class",
        _DEFAULT["cam_class"],
        "Which class activation map gives the box and overlay: predicted (this frame's class), "
        "eigen (class-agnostic) or a class name such as blocked.",
        read_only=True,
    ),
    ParamSpec(
        "fallback_class",
        _DEFAULT["fallback_class"],
        "Class published when the smoothed confidence is below smoothing.min_confidence: empty "
        "(the default) = the model card's fallback_class (undefined for the shipped model), a "
        f"class name, or {NO_FALLBACK_PARAM} for none (the top-1 class is published).",
        read_only=True,
    ),
    ParamSpec(
        "input_transport",
        "raw",
        "raw: subscribe to sensor_msgs/Image on `image`; compressed: sensor_msgs/CompressedImage "
        "(JPEG/PNG) on `image` + /compressed (image_transport naming).",
        choices=("raw", "compressed"),
        read_only=True,
    ),
    ParamSpec(
        "qos.reliability",
        "best_effort",
        "Image subscription reliability: best_effort (sensor data, matches every camera driver) "
        "or reliable (only matches reliable publishers, e.g. bag playback with reliable QoS).",
        choices=("best_effort", "reliable"),
        read_only=True,
    ),
    ParamSpec(
        "qos.depth",
        1,
        "Image subscription history depth (keep last). 1: the node only wants the newest frame.",
        range=(1, 100),
        read_only=True,
    ),
    ParamSpec(
        "max_age_s",
        _DEFAULT["max_age_s"],
        "Frames whose header stamp is older than this when their turn comes are dropped and "
        "counted (drops_stale); 0 disables the check. Bag playback needs `--clock` and "
        "use_sim_time:=true, or 0 here.",
        range=(0.0, 3600.0),
    ),
    ParamSpec(
        "cam_threshold",
        _DEFAULT["cam_threshold"],
        "Fraction of the CAM maximum kept for the CAM box; negative (the default): the value "
        "chosen for the model at export (its card's cam_threshold; "
        f"{DEFAULT_CAM_THRESHOLD} as Zhou et al. when the card has none).",
        range=(CARD_CAM_THRESHOLD, 1.0),
    ),
    ParamSpec(
        "overlay.max_rate_hz",
        _DEFAULT["overlay.max_rate_hz"],
        "Most overlays (~/cam_overlay, ~/cam_overlay/compressed, ~/cam) per second, rendered only "
        "while someone subscribes; 0 = never.",
        range=(0.0, 120.0),
    ),
    ParamSpec(
        "overlay.scale",
        _DEFAULT["overlay.scale"],
        "Size of ~/cam_overlay relative to the input image (smaller is cheaper to draw and send).",
        range=(0.05, 1.0),
    ),
    ParamSpec(
        "overlay.alpha",
        _DEFAULT["overlay.alpha"],
        "Opacity of the CAM heat map on the overlay (0 = camera only, 1 = heat map only).",
        range=(0.0, 1.0),
    ),
    ParamSpec(
        "overlay.jpeg_quality",
        _DEFAULT["overlay.jpeg_quality"],
        "JPEG quality of ~/cam_overlay/compressed.",
        range=(1, 100),
    ),
    ParamSpec(
        "smoothing.ema_alpha",
        _DEFAULT["smoothing.ema_alpha"],
        "Weight of the newest frame in the moving average of class probabilities (1 = none).",
        range=(0.01, 1.0),
    ),
    ParamSpec(
        "smoothing.switch_margin",
        _DEFAULT["smoothing.switch_margin"],
        "How much more probable a new class must be than the current one to take over.",
        range=(0.0, 1.0),
    ),
    ParamSpec(
        "smoothing.hold_frames",
        _DEFAULT["smoothing.hold_frames"],
        "Consecutive frames a new class must lead by switch_margin before the decision changes.",
        range=(1, 100),
    ),
    ParamSpec(
        "smoothing.min_confidence",
        _DEFAULT["smoothing.min_confidence"],
        "Below this smoothed probability the decision is `undefined`: weak evidence is not a "
        "guess.",
        range=(0.0, 1.0),
    ),
    ParamSpec(
        "diagnostics.period_s",
        _DEFAULT["diagnostics.period_s"],
        "Period of the /diagnostics status (rates, latency, drops, backend, last error).",
        range=(0.1, 60.0),
        read_only=True,
    ),
    ParamSpec(
        "max_pixels",
        _DEFAULT["max_pixels"],
        "Frames claiming more pixels than this (JPEG/PNG header, raw width x height) are refused "
        "before decoding and counted as decode errors: decompression bombs cost microseconds, "
        "not seconds. Default 7680x4320 (8K).",
        range=(1, 1 << 30),  # OpenCV refuses more than 2^30 pixels anyway
    ),
    ParamSpec(
        "error_throttle_s",
        _DEFAULT["error_throttle_s"],
        "At most one log line per this many seconds for repeated bad frames (all are counted).",
        range=(0.0, 3600.0),
    ),
)

BY_NAME: dict[str, ParamSpec] = {p.name: p for p in PARAMS}


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """The ``ParameterDescriptor`` that declares ``spec`` (range enforced by rclpy)."""
    desc = spec.description
    if spec.choices:
        desc += f" One of: {', '.join(spec.choices)}."
    d = ParameterDescriptor(
        description=desc, read_only=spec.read_only, dynamic_typing=spec.syntax is not None
    )
    if spec.range is not None:
        lo, hi = spec.range
        if isinstance(spec.default, float):
            d.floating_point_range = [FloatingPointRange(from_value=lo, to_value=hi, step=0.0)]
        else:
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
    if spec.choices:
        d.additional_constraints = f"one of: {', '.join(spec.choices)}"
    return d
