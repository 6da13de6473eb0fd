"""The model card: the single contract between training, export, engines, the node and replay.

Written once at export as JSON beside the ONNX file (``lane_change.onnx`` ->
``lane_change.json``) and carried into every engine's metadata. It says how pixels must be
prepared (size, colour order, mean/std, resize policy), what comes out (output names and shapes,
class names), which exact ONNX file it describes (sha256) and where the model came from.
Anything that runs the model reads these facts from here and nowhere else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gapcam.errors import ModelContractError

SCHEMA_VERSION = 1
RESIZE_POLICIES = ("stretch",)
COLOR_ORDERS = ("RGB", "BGR")
LAYOUTS = ("NCHW", "NHWC")
INTERPOLATIONS = ("area", "linear", "nearest")

#: Fields a card must spell out: nothing about a model's input or output is guessed.
REQUIRED_FIELDS = ("name", "classes", "input", "output", "classifier_bias", "onnx_sha256")
REQUIRED_INPUT_FIELDS = ("name", "width", "height", "color_order", "mean", "std")
REQUIRED_OUTPUT_FIELDS = ("logits", "cam", "num_classes", "cam_height", "cam_width")


@dataclass(frozen=True)
class InputSpec:
    """How an image becomes the network's input tensor (float32, ``N x 3 x height x width`` or,
    with ``layout="NHWC"``, ``N x height x width x 3``).

    The defaults are the reference network's training input (what ``gapcam train`` uses when
    given nothing else); a card read from JSON must state name, size, colour order, mean and std
    (:data:`REQUIRED_INPUT_FIELDS`), so no model silently inherits them.
    """

    name: str = "image"
    width: int = 128
    height: int = 128
    color_order: str = "RGB"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    #: "stretch": the whole frame is resized to width x height, so CAM boxes map back to the
    #: image by a per-axis scale and no pixel of the camera is cropped away.
    resize: str = "stretch"
    #: OpenCV interpolation used for downscaling (area averaging avoids aliasing).
    interpolation: str = "area"
    #: Axis order of the input tensor: "NCHW" (PyTorch) or "NHWC" (TensorFlow/Keras exports).
    layout: str = "NCHW"


@dataclass(frozen=True)
class OutputSpec:
    """Names and shapes of the graph outputs (the batch axis is dynamic).

    Class count and CAM size have no defaults: they are facts of one model.
    """

    num_classes: int
    cam_height: int
    cam_width: int
    logits: str = "logits"
    cam: str = "cam"
    features: str | None = "features"
    feature_channels: int = 0


@dataclass(frozen=True)
class ModelCard:
    """Everything the runtime needs to know about one exported classifier."""

    name: str
    classes: tuple[str, ...]
    input: InputSpec
    output: OutputSpec
    #: Bias ``b_c`` of the final linear layer: ``mean_xy(cam_c) + b_c == logits_c``.
    classifier_bias: tuple[float, ...]
    #: sha256 of the exact ONNX file this card describes (checked at every load).
    onnx_sha256: str
    precision: str = "fp32"
    opset: int = 17
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    #: Class published when the smoothed confidence is below ``min_confidence``; ``None``: the
    #: top-1 class is published whatever its confidence (weak evidence is then only visible in
    #: ``confidence``). The shipped lane-change model uses ``"undefined"``.
    fallback_class: str | None = None
    #: Class whose CAM ``gapcam evaluate`` scores against ground-truth boxes by default
    #: (``blocked`` for the shipped model); ``None``: no localisation unless asked for.
    localisation_class: str | None = None
    #: CAM box threshold (fraction of the map's maximum) chosen for this model at export;
    #: ``None``: the runtime default (0.2, Zhou et al.).
    cam_threshold: float | None = None

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        if len(self.classes) != self.output.num_classes:
            raise ModelContractError(
                f"model card lists {len(self.classes)} classes but the output has "
                f"{self.output.num_classes}; re-export the model"
            )
        if len(self.classifier_bias) != len(self.classes):
            raise ModelContractError("model card: classifier_bias must have one value per class")
        if self.input.resize not in RESIZE_POLICIES:
            raise ModelContractError(
                f"model card: resize policy {self.input.resize!r} unknown; use {RESIZE_POLICIES}"
            )
        if self.input.color_order not in COLOR_ORDERS:
            raise ModelContractError(
                f"model card: colour order {self.input.color_order!r} unknown; use {COLOR_ORDERS}"
            )
        if self.input.layout not in LAYOUTS:
            raise ModelContractError(
                f"model card: input layout {self.input.layout!r} unknown; use {LAYOUTS}"
            )
        if self.input.interpolation not in INTERPOLATIONS:
            raise ModelContractError(
                f"model card: interpolation {self.input.interpolation!r} unknown; "
                f"use {INTERPOLATIONS}"
            )
        if len(self.input.mean) != 3 or len(self.input.std) != 3:
            raise ModelContractError("model card: input mean and std need 3 values (r, g, b)")
        if any(s <= 0 for s in self.input.std):
            raise ModelContractError("model card: input std values must be > 0")
        if self.input.width < 1 or self.input.height < 1:
            raise ModelContractError("model card: input width and height must be >= 1")
        seen: set[str] = set()
        for c in self.classes:
            if c in seen:
                raise ModelContractError(
                    f"model card: class name {c!r} appears twice; class names must be unique"
                )
            seen.add(c)
        if self.localisation_class is not None and self.localisation_class not in self.classes:
            raise ModelContractError(
                f"model card: localisation_class {self.localisation_class!r} is not one of the "
                "classes; use one of them or null"
            )
        if self.fallback_class is not None and self.fallback_class not in self.classes:
            raise ModelContractError(
                f"model card: fallback_class {self.fallback_class!r} is not one of the classes "
                f"{list(self.classes)[:8]}; use one of them or null"
            )
        if self.cam_threshold is not None and not 0.0 <= self.cam_threshold <= 1.0:
            raise ModelContractError(
                f"model card: cam_threshold {self.cam_threshold} outside 0..1; re-export the model"
            )

    def describe(self) -> str:
        """What the model expects and returns, for people (``gapcam card``)."""
        i, o = self.input, self.output
        classes = ", ".join(self.classes[:10]) + (
            f", ... ({len(self.classes)} in all)" if len(self.classes) > 10 else ""
        )
        lines = [
            f"model      {self.model_id} (opset {self.opset})",
            f"input      {i.name!r}: float32 {expected_input_shape(i)} ({i.layout}), "
            f"{i.color_order}, resize {i.resize} ({i.interpolation})",
            f"normalise  (pixel/255 - mean) / std, mean {list(i.mean)}, std {list(i.std)}",
            f"classes    {len(self.classes)}: {classes}",
            f"fallback   {self.fallback_class or 'none (the top-1 class is always published)'}",
            f"outputs    {o.logits!r} [N, {o.num_classes}], {o.cam!r} "
            f"[N, {o.num_classes}, {o.cam_height}, {o.cam_width}]"
            + (
                f", {o.features!r} [N, {o.feature_channels}, {o.cam_height}, {o.cam_width}]"
                if o.features
                else ""
            ),
        ]
        if self.cam_threshold is not None:
            lines.append(f"cam box    pixels >= {self.cam_threshold} of the CAM maximum")
        source = self.provenance.get("imported_from") or self.provenance.get("checkpoint")
        if source:
            lines.append(f"source     {source}")
        return "\n".join(lines)

    @property
    def model_id(self) -> str:
        """Short id used in messages and logs: ONNX sha prefix + precision."""
        return f"{self.name}@{self.onnx_sha256[:12]}/{self.precision}"

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return p

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """Build a card from its JSON form; a missing required field is named in one line."""
        if not isinstance(data, dict):
            raise ModelContractError("model card must be a JSON object")
        version = data.get("schema_version", 0)
        if version != SCHEMA_VERSION:
            raise ModelContractError(
                f"model card schema {version} is not supported (expected {SCHEMA_VERSION}); "
                "re-export the model with this version of gapcam"
            )
        _require(data, REQUIRED_FIELDS, "")
        if not isinstance(data["input"], dict) or not isinstance(data["output"], dict):
            raise ModelContractError("model card: 'input' and 'output' must be JSON objects")
        _require(data["input"], REQUIRED_INPUT_FIELDS, "input.")
        _require(data["output"], REQUIRED_OUTPUT_FIELDS, "output.")
        if not data["onnx_sha256"]:
            raise ModelContractError(
                "model card: field 'onnx_sha256' is empty; it must be the sha256 of the ONNX file "
                "(`gapcam import` and `gapcam export` write it)"
            )
        try:
            inp = dict(data["input"])
            inp["mean"] = tuple(float(v) for v in inp["mean"])
            inp["std"] = tuple(float(v) for v in inp["std"])
            return cls(
                name=str(data["name"]),
                classes=tuple(str(c) for c in data["classes"]),
                input=InputSpec(**inp),
                output=OutputSpec(**data["output"]),
                classifier_bias=tuple(float(b) for b in data["classifier_bias"]),
                onnx_sha256=str(data["onnx_sha256"]),
                precision=data.get("precision", "fp32"),
                opset=int(data.get("opset", 17)),
                provenance=dict(data.get("provenance") or {}),
                metrics=dict(data.get("metrics") or {}),
                schema_version=version,
                fallback_class=data.get("fallback_class"),
                localisation_class=data.get("localisation_class"),
                cam_threshold=(
                    None if data.get("cam_threshold") is None else float(data["cam_threshold"])
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelContractError(
                f"model card is malformed ({str(exc).splitlines()[0] if str(exc) else exc!r}); "
                "fix the field or re-import the model"
            ) from exc

    @classmethod
    def load(cls, path: str | Path) -> ModelCard:
        p = Path(path)
        if not p.is_file():
            raise ModelContractError(
                f"{p}: model card not found; every model needs its JSON card beside it "
                "(written by `gapcam export`)"
            )
        try:
            data = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelContractError(
                f"{p}: model card is not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})"
            ) from exc
        return cls.from_dict(data)


def expected_input_shape(spec: InputSpec) -> list[int | str]:
    """The input tensor shape a card promises (``"N"``: any batch)."""
    if spec.layout == "NHWC":
        return ["N", spec.height, spec.width, 3]
    return ["N", 3, spec.height, spec.width]


def input_shape_problem(shape: Sequence[Any], spec: InputSpec) -> str | None:
    """Why a graph input of ``shape`` cannot take the images the card describes (or ``None``).

    gapcam always feeds 3-channel colour images of the card's size in the card's layout.
    """
    if len(shape) != 4:
        return f"input shape {list(shape)} is not 4-D; gapcam feeds image batches"
    if spec.layout == "NHWC":
        channels, size = shape[3], list(shape[1:3])
    else:
        channels, size = shape[1], list(shape[2:4])
    if isinstance(channels, int) and channels != 3:
        other = shape[1] if spec.layout == "NHWC" else shape[3]
        hint = (
            f" (the other end has {other}: is the layout {'NCHW' if spec.layout == 'NHWC' else 'NHWC'}?)"
            if other == 3
            else ""
        )
        return (
            f"model input has {channels} channel(s) in the card's {spec.layout} layout but gapcam "
            f"feeds 3-channel colour images{hint}; use a 3-channel model or fix input.layout"
        )
    if size != [spec.height, spec.width]:
        return (
            f"input shape {list(shape)} != card {expected_input_shape(spec)}; re-export model and "
            "card together (or fix input.width/height)"
        )
    return None


def _require(data: dict[str, Any], fields: Sequence[str], prefix: str) -> None:
    for f in fields:
        if f not in data:
            raise ModelContractError(
                f"model card: required field '{prefix}{f}' is missing; see the README section "
                "'The model card' (cards are written by `gapcam import` / `gapcam export`)"
            )


def card_path_for(model_path: str | Path) -> Path:
    """The card that belongs to a model file: same stem, ``.json`` (``x.onnx`` -> ``x.json``)."""
    p = Path(model_path)
    return p.with_suffix(".json")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_card_for_onnx(onnx_path: str | Path, card_path: str | Path | None = None) -> ModelCard:
    """Load the card of ``onnx_path`` and check it really describes that file.

    A card copied next to a retrained model is the classic silent failure (right names, wrong
    normalisation or class order), so the sha256 must match.
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise ModelContractError(f"{onnx_path}: model file not found")
    card = ModelCard.load(card_path or card_path_for(onnx_path))
    actual = sha256_file(onnx_path)
    if card.onnx_sha256 != actual:
        from gapcam.onnx_damage import onnx_damage

        damage = onnx_damage(onnx_path)
        if damage:
            raise ModelContractError(
                f"{onnx_path}: ONNX file is damaged/truncated ({onnx_path.stat().st_size} bytes, "
                f"sha256 {actual[:12]} instead of the card's {card.onnx_sha256[:12]}: {damage}); "
                "copy the model again from where it was exported"
            )
        raise ModelContractError(
            f"{onnx_path}: sha256 {actual[:12]} does not match its model card "
            f"({card.onnx_sha256[:12]}); the card belongs to another model, re-export both together"
        )
    return card
