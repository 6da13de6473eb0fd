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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gapcam.errors import ModelContractError

SCHEMA_VERSION = 1
RESIZE_POLICIES = ("stretch",)
COLOR_ORDERS = ("RGB", "BGR")


@dataclass(frozen=True)
class InputSpec:
    """How an image becomes the network's input tensor (``N x 3 x height x width``, float32)."""

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


@dataclass(frozen=True)
class OutputSpec:
    """Names and shapes of the graph outputs (``-1`` marks the dynamic batch axis)."""

    logits: str = "logits"
    cam: str = "cam"
    features: str | None = "features"
    num_classes: int = 3
    cam_height: int = 16
    cam_width: int = 16
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
    onnx_sha256: str = ""
    precision: str = "fp32"
    opset: int = 17
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    #: Class published when confidence is low (``None``: the raw top-1 is published).
    fallback_class: str | None = None
    #: CAM box threshold (fraction of the map's maximum) chosen for this model at export.
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
        try:
            version = int(data.get("schema_version", 0))
            if version != SCHEMA_VERSION:
                raise ModelContractError(
                    f"model card schema {version} is not supported (expected {SCHEMA_VERSION}); "
                    "re-export the model with this version of gapcam"
                )
            inp = dict(data["input"])
            inp["mean"] = tuple(inp["mean"])
            inp["std"] = tuple(inp["std"])
            return cls(
                name=data["name"],
                classes=tuple(data["classes"]),
                input=InputSpec(**inp),
                output=OutputSpec(**data["output"]),
                classifier_bias=tuple(float(b) for b in data["classifier_bias"]),
                onnx_sha256=data.get("onnx_sha256", ""),
                precision=data.get("precision", "fp32"),
                opset=int(data.get("opset", 17)),
                provenance=dict(data.get("provenance", {})),
                metrics=dict(data.get("metrics", {})),
                schema_version=version,
                fallback_class=data.get("fallback_class"),
                cam_threshold=data.get("cam_threshold"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelContractError(
                f"model card is malformed ({exc!r}); re-export the model"
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
    if card.onnx_sha256 and card.onnx_sha256 != actual:
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
