"""Export a trained checkpoint to ONNX (opset 17, dynamic batch) with the CAM fused in the graph,
self-check it, and write its model card.

Checks run at every export, and export fails if any does:

* ``onnx.checker`` on the saved file;
* ONNX Runtime vs PyTorch on the same batch (logits and CAM);
* the GAP identity ``mean_xy(cam_c) + b_c == logits_c`` on ONNX Runtime's outputs;
* a batch of 2 (the batch axis really is dynamic).

The ONNX and its card are written to a temporary folder beside the target and moved into place
only after every check passed, so a failed export never leaves a model that looks valid.
A checkpoint that ``gapcam train`` did not write is refused in one line that says what it lacks.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import platform
import subprocess
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from gapcam.backends.onnxruntime_backend import OnnxRuntimeBackend
from gapcam.cam import gap_identity_error
from gapcam.cam_threshold import write_cam_threshold
from gapcam.dataset import Sample
from gapcam.errors import GapcamError
from gapcam.model_card import InputSpec, ModelCard, OutputSpec, card_path_for, sha256_file
from gapcam.training.architectures import ARCHITECTURES, build_network, describe
from gapcam.training.network import CamExportWrapper
from gapcam.training.validation_split import validation_samples

OPSET = 17
#: Tolerances of the export self-checks (float32, CPU).
ORT_TOLERANCE = 1e-3
GAP_TOLERANCE = 1e-3


#: Keys a checkpoint of ``gapcam train`` always has.
CHECKPOINT_KEYS = ("state_dict", "classes", "input")


def load_checkpoint(path: str | Path, spec: InputSpec | None = None) -> tuple[Any, dict]:
    """The network of a ``gapcam train`` checkpoint, in eval mode, and the checkpoint dict.

    ``spec`` overrides the recorded input (size, normalisation); the network is rebuilt at that
    size. Anything else than a ``gapcam train`` checkpoint raises one-line :class:`GapcamError`.
    """
    path = Path(path)
    if not path.is_file():
        raise GapcamError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is the same user error
        raise GapcamError(
            f"{path}: not a PyTorch checkpoint ({type(exc).__name__}); export takes the .pt "
            "written by `gapcam train` (for an ONNX model of your own use `gapcam import`)"
        ) from exc
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in CHECKPOINT_KEYS):
        have = sorted(ckpt)[:6] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise GapcamError(
            f"{path}: not a `gapcam train` checkpoint (needs keys {list(CHECKPOINT_KEYS)}, has "
            f"{have}); export your own network to ONNX and use `gapcam import`"
        )
    arch = ckpt.get("arch", "small")
    if arch not in ARCHITECTURES:
        raise GapcamError(f"{path}: unknown architecture {arch!r} (known: {ARCHITECTURES})")
    if spec is None:
        spec = _spec_from(ckpt["input"])
    net = build_network(arch, len(ckpt["classes"]), spec, widths=tuple(ckpt.get("widths") or ()))
    try:
        net.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GapcamError(
            f"{path}: weights do not fit a {arch} network with {len(ckpt['classes'])} classes "
            f"({first})"
        ) from exc
    if ckpt.get("trainable_blocks") is not None and hasattr(net, "freeze"):
        net.freeze(int(ckpt["trainable_blocks"]))
    net.eval()
    return net, {**ckpt, "input": dataclasses.asdict(spec)}


def _spec_from(recorded: dict) -> InputSpec:
    fields = {f.name for f in dataclasses.fields(InputSpec)}
    try:
        return InputSpec(
            **{
                k: tuple(v) if isinstance(v, list) else v
                for k, v in recorded.items()
                if k in fields
            }
        )
    except TypeError as exc:
        raise GapcamError(f"checkpoint input spec is malformed ({exc})") from exc


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def export_onnx(
    checkpoint: str | Path,
    out_onnx: str | Path,
    *,
    name: str | None = None,
    with_features: bool = True,
    metrics: dict | None = None,
    check_images: np.ndarray | None = None,
    spec: InputSpec | None = None,
    fallback_class: str | None = None,
    cam_threshold: float | None = None,
    validation: Sequence[Sample] | None = None,
    progress: bool = True,
) -> ModelCard:
    """Write ``out_onnx`` and its card (``.json`` beside it); return the card.

    ``name`` and ``fallback_class`` default to what ``gapcam train`` recorded in the checkpoint;
    ``spec`` overrides its input spec. ``check_images`` (a float32 NCHW batch) is what the
    self-checks run on; a seeded random batch is used when none is given.

    ``cam_threshold`` is written as given; ``None`` chooses it (:mod:`gapcam.cam_threshold`) on
    ``validation``, by default the validation split of the training data named in the
    checkpoint when that folder is still there. Without images that carry boxes the card gets no
    threshold and tools use 0.2.
    """
    net, ckpt = load_checkpoint(checkpoint, spec)
    spec = _spec_from(ckpt["input"])
    classes = tuple(ckpt["classes"])
    name = name or ckpt.get("name") or "lane_change"
    fallback_class = fallback_class if fallback_class is not None else ckpt.get("fallback_class")
    if fallback_class is not None and fallback_class not in classes:
        raise GapcamError(
            f"--fallback-class {fallback_class!r} is not one of the classes {list(classes)}"
        )
    out_onnx = Path(out_onnx)
    out_onnx.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_onnx.parent, prefix=".export-") as tmp:
        tmp_onnx = Path(tmp) / out_onnx.name
        card = _export_unchecked(
            net, ckpt, tmp_onnx, spec, name, with_features, metrics, fallback_class, cam_threshold
        )
        card.save(card_path_for(tmp_onnx))
        card = dataclasses.replace(
            card,
            provenance={
                **card.provenance,
                "checkpoint": Path(checkpoint).name,
                "self_check": self_check(tmp_onnx, net, check_images),
            },
        )
        card.save(card_path_for(tmp_onnx))
        os.replace(tmp_onnx, out_onnx)
        os.replace(card_path_for(tmp_onnx), card_path_for(out_onnx))
    if cam_threshold is None:
        if validation is None:
            validation = _training_validation(ckpt.get("report") or {}, classes)
        if validation:
            card = write_cam_threshold(out_onnx, validation, progress=progress) or card
    return card


def _training_validation(report: dict, classes: tuple[str, ...]) -> list[Sample]:
    """The validation images training held out, if its data folder is still there."""
    data, cfg = report.get("data"), report.get("config") or {}
    if not data or not Path(data).is_dir() or "seed" not in cfg:
        return []
    return validation_samples(data, int(cfg["seed"]), float(cfg["val_fraction"]), classes)


def _export_unchecked(
    net: Any,
    ckpt: dict,
    out_onnx: Path,
    spec: InputSpec,
    name: str,
    with_features: bool,
    metrics: dict | None,
    fallback_class: str | None,
    cam_threshold: float | None,
) -> ModelCard:
    wrapper = CamExportWrapper(net, with_features).eval()
    dummy = torch.zeros(1, 3, spec.height, spec.width)
    output_names = ["logits", "cam"] + (["features"] if with_features else [])
    dynamic_axes = {n: {0: "batch"} for n in [spec.name, *output_names]}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated but is the one that gives opset 17 (TensorRT 8.5
        # parses nothing newer); the dynamo exporter emits opset 18. See TENSORRT.md.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (dummy,),
            str(out_onnx),
            opset_version=OPSET,
            dynamo=False,
            input_names=[spec.name],
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
        )
    model = onnx.load(str(out_onnx))
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise GapcamError(
            f"export self-check failed: onnx.checker: {str(exc).splitlines()[0]}"
        ) from exc

    with torch.no_grad():
        _, cam_t, f_t = net.forward_cam(dummy)
    out_spec = OutputSpec(
        num_classes=len(ckpt["classes"]),
        cam_height=int(cam_t.shape[2]),
        cam_width=int(cam_t.shape[3]),
        features="features" if with_features else None,
        feature_channels=int(f_t.shape[1]),
    )
    report = ckpt.get("report", {})
    return ModelCard(
        name=name,
        classes=tuple(ckpt["classes"]),
        input=spec,
        output=out_spec,
        classifier_bias=tuple(float(b) for b in net.fc.bias.detach().numpy()),
        onnx_sha256=sha256_file(out_onnx),
        precision="fp32",
        opset=OPSET,
        fallback_class=fallback_class,
        cam_threshold=cam_threshold,
        provenance={
            "architecture": describe(net, ckpt),
            "training_data": report.get("data"),
            "training_config": report.get("config"),
            "train_images": report.get("train_images"),
            "train_wall_time_s": report.get("wall_time_s"),
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "python": platform.python_version(),
            "git_commit": _git_commit(),
            "exported": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        },
        metrics={"val_accuracy": report.get("val_accuracy"), **(metrics or {})},
    )


def self_check(onnx_path: Path, net: Any, images: np.ndarray | None = None) -> dict:
    """ORT vs PyTorch, the GAP identity and a batch of 2; raises :class:`GapcamError` on any
    mismatch."""
    net.eval()  # batch-norm running statistics, as exported
    backend = OnnxRuntimeBackend(onnx_path)
    if images is None:
        rng = np.random.default_rng(0)
        spec = backend.card.input
        images = rng.standard_normal((4, 3, spec.height, spec.width)).astype(np.float32)
    out = backend.infer(images)
    with torch.no_grad():
        logits_t, cam_t, _ = net.forward_cam(torch.from_numpy(images))
    err_logits = float(np.abs(out.logits - logits_t.numpy()).max())
    err_cam = float(np.abs(out.cam - cam_t.numpy()).max())
    err_gap = gap_identity_error(out.cam, out.logits, np.asarray(backend.card.classifier_bias))
    if max(err_logits, err_cam) > ORT_TOLERANCE:
        raise GapcamError(
            f"export self-check failed: ONNX Runtime differs from PyTorch "
            f"(logits {err_logits:.2e}, cam {err_cam:.2e})"
        )
    if err_gap > GAP_TOLERANCE:
        raise GapcamError(f"export self-check failed: GAP identity error {err_gap:.2e}")
    pair = backend.infer(images[:1].repeat(2, axis=0))
    err_batch = float(np.abs(pair.logits - out.logits[:1]).max())
    if pair.logits.shape[0] != 2 or err_batch > ORT_TOLERANCE:
        raise GapcamError(f"export self-check failed: a batch of 2 differs by {err_batch:.2e}")
    return {"ort_vs_torch_logits": err_logits, "ort_vs_torch_cam": err_cam, "gap_identity": err_gap}
