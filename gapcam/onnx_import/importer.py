"""The whole ``gapcam import`` job: read, find the head, fuse, self-check, then write.

``OUT.onnx`` and its card ``OUT.json`` are written only after every self-check passed (into a
temporary folder beside OUT, then moved), so a failed import leaves nothing half-made behind.
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto

from gapcam.errors import GapcamError
from gapcam.model_card import (
    COLOR_ORDERS,
    LAYOUTS,
    InputSpec,
    ModelCard,
    OutputSpec,
    card_path_for,
    sha256_file,
)
from gapcam.onnx_import.checks import run_self_checks
from gapcam.onnx_import.fusion import CAM, FEATURES, LOGITS, fuse_cam
from gapcam.onnx_import.graph import opset_version
from gapcam.onnx_import.head import Head, find_head


@dataclass
class ImportResult:
    onnx_path: Path
    card: ModelCard
    head: Head
    checks: dict[str, float]
    seconds: float
    made_batch_dynamic: bool


def read_labels(path: str | Path) -> list[str]:
    """Class names from a text file, one per line (blank lines and ``#`` comments skipped)."""
    p = Path(path)
    if not p.is_file():
        raise GapcamError(f"{p}: labels file not found (one class name per line)")
    names = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    return [n for n in names if n and not n.startswith("#")]


def parse_triple(text: str, what: str) -> tuple[float, float, float]:
    """``"0.485,0.456,0.406"`` -> three floats (fractions of 255, as in the card)."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise GapcamError(f"--{what} must be three numbers r,g,b (got {text!r})") from exc
    if len(values) != 3:
        raise GapcamError(f"--{what} must be three numbers r,g,b (got {text!r})")
    return values  # type: ignore[return-value]


def _name_nodes(model: onnx.ModelProto) -> None:
    taken = {n.name for n in model.graph.node if n.name}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def _graph_input(model: onnx.ModelProto, layout: str | None):
    """(input name, static batch or None, height, width, layout) read from the graph."""
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise GapcamError(
            f"the model has {len(inputs)} inputs {[i.name for i in inputs]}; gapcam feeds one image"
        )
    inp = inputs[0]
    t = inp.type.tensor_type
    if t.elem_type != TensorProto.FLOAT:
        raise GapcamError(
            f"input {inp.name!r} is {TensorProto.DataType.Name(t.elem_type)}; gapcam feeds "
            "float32 normalised images (export the model with a float32 input)"
        )
    dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    if len(dims) != 4:
        raise GapcamError(
            f"input {inp.name!r} has shape {dims}; gapcam feeds 4-D image batches (NCHW or NHWC)"
        )
    if layout is None:
        if dims[1] == 3:
            layout = "NCHW"
        elif dims[3] == 3:
            layout = "NHWC"
        else:
            raise GapcamError(
                f"input {inp.name!r} has shape {dims}: {dims[1]} channels (NCHW) or {dims[3]} "
                "(NHWC); gapcam feeds 3-channel colour images"
            )
    elif layout not in LAYOUTS:
        raise GapcamError(f"--layout must be one of {LAYOUTS}")
    channels, h, w = (
        (dims[1], dims[2], dims[3]) if layout == "NCHW" else (dims[3], dims[1], dims[2])
    )
    if channels != 3:
        raise GapcamError(
            f"input {inp.name!r} has {channels} channels in {layout}; gapcam feeds 3-channel "
            "colour images"
        )
    if not h or not w:
        raise GapcamError(
            f"input {inp.name!r} has no fixed height/width ({dims}); export the model with a "
            "fixed input size"
        )
    return inp.name, dims[0], int(h), int(w), layout


def import_model(
    model_path: str | Path,
    out_path: str | Path,
    classes: Sequence[str],
    *,
    mean: Sequence[float],
    std: Sequence[float],
    name: str | None = None,
    color_order: str = "RGB",
    fallback_class: str | None = None,
    with_features: bool = True,
    layout: str | None = None,
    output: str | None = None,
) -> ImportResult:
    """Import ``model_path`` as ``out_path`` (+ card); see the module docstring."""
    t0 = time.perf_counter()
    model_path, out_path = Path(model_path), Path(out_path)
    if not model_path.is_file():
        raise GapcamError(f"{model_path}: model file not found")
    if out_path.suffix != ".onnx":
        raise GapcamError(f"{out_path}: the output must be an .onnx path (its card goes beside it)")
    if out_path.resolve() == model_path.resolve():
        raise GapcamError("--out must differ from the source model (it is never overwritten)")
    if color_order not in COLOR_ORDERS:
        raise GapcamError(f"--color-order must be one of {COLOR_ORDERS}")
    classes = [str(c) for c in classes]
    try:
        source = onnx.load(str(model_path))
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types
        raise GapcamError(f"{model_path}: not a readable ONNX model ({exc})") from exc
    work = onnx.ModelProto()
    work.CopyFrom(source)
    _name_nodes(work)
    in_name, static_batch, height, width, layout = _graph_input(work, layout)
    if in_name in (LOGITS, CAM, FEATURES):
        raise GapcamError(f"the model's input is called {in_name!r}, a name gapcam reserves")
    head = find_head(work, output)
    if head.num_classes != len(classes):
        raise GapcamError(
            f"the model has {head.num_classes} classes but {len(classes)} names were given"
        )
    fused = fuse_cam(work, head, with_features=with_features)
    checks = run_self_checks(
        source,
        fused,
        (2, 3, height, width) if layout == "NCHW" else (2, height, width, 3),
        head.bias,
        source_output=head.output,
        source_softmax=head.softmax,
        source_batch=static_batch,
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".import-", dir=out_path.parent) as tmp:
        tmp_onnx = Path(tmp) / out_path.name
        onnx.save(fused, str(tmp_onnx))
        card = ModelCard(
            name=name or out_path.stem,
            classes=tuple(classes),
            input=InputSpec(
                name=in_name,
                width=width,
                height=height,
                color_order=color_order,
                mean=tuple(float(v) for v in mean),  # type: ignore[arg-type]
                std=tuple(float(v) for v in std),  # type: ignore[arg-type]
                layout=layout,
            ),
            output=OutputSpec(
                num_classes=head.num_classes,
                cam_height=head.cam_height,
                cam_width=head.cam_width,
                logits=LOGITS,
                cam=CAM,
                features=FEATURES if with_features else None,
                feature_channels=head.channels,
            ),
            classifier_bias=tuple(float(b) for b in head.bias),
            onnx_sha256=sha256_file(tmp_onnx),
            precision="fp32",
            opset=opset_version(fused),
            fallback_class=fallback_class,
            provenance={
                "imported_from": model_path.name,
                "source_sha256": sha256_file(model_path),
                "head": head.describe(),
                "softmax_removed": head.softmax,
                "source_batch": static_batch,
                "feature_layout": head.feature_layout,
                "onnx": onnx.__version__,
                "imported": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            },
            metrics={"import_checks": checks},
        )
        card.save(card_path_for(tmp_onnx))
        os.replace(tmp_onnx, out_path)
        os.replace(card_path_for(tmp_onnx), card_path_for(out_path))
    return ImportResult(
        onnx_path=out_path,
        card=card,
        head=head,
        checks=checks,
        seconds=time.perf_counter() - t0,
        made_batch_dynamic=static_batch is not None,
    )
