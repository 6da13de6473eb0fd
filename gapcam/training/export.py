"""Export a trained checkpoint to ONNX (opset 17, dynamic batch) with the CAM fused in the graph,
self-check it, and write its model card.

Checks run at every export, and export fails if any does:

* ``onnx.checker`` on the saved file;
* ONNX Runtime vs PyTorch on the same batch (logits and CAM);
* the GAP identity ``mean_xy(cam_c) + b_c == logits_c`` on ONNX Runtime's outputs.
"""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from gapcam.backends.onnxruntime_backend import OnnxRuntimeBackend
from gapcam.cam import gap_identity_error
from gapcam.errors import GapcamError
from gapcam.model_card import InputSpec, ModelCard, OutputSpec, card_path_for, sha256_file
from gapcam.training.network import CamExportWrapper, LaneChangeNet

OPSET = 17
#: Tolerances of the export self-checks (float32, CPU).
ORT_TOLERANCE = 1e-3
GAP_TOLERANCE = 1e-3


def load_checkpoint(path: str | Path) -> tuple[LaneChangeNet, dict]:
    ckpt = torch.load(Path(path), map_location="cpu", weights_only=False)
    net = LaneChangeNet(len(ckpt["classes"]), tuple(ckpt["widths"]))
    net.load_state_dict(ckpt["state_dict"])
    net.eval()
    return net, ckpt


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
    name: str = "lane_change",
    with_features: bool = True,
    metrics: dict | None = None,
    check_images: np.ndarray | None = None,
) -> ModelCard:
    """Write ``out_onnx`` and its card (``.json`` beside it); return the card.

    ``check_images`` (a float32 NCHW batch) is what the self-checks run on; a seeded random
    batch is used when none is given.
    """
    net, ckpt = load_checkpoint(checkpoint)
    spec = InputSpec(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in ckpt["input"].items()}
    )
    out_onnx = Path(out_onnx)
    out_onnx.parent.mkdir(parents=True, exist_ok=True)
    wrapper = CamExportWrapper(net, with_features).eval()
    dummy = torch.zeros(1, 3, spec.height, spec.width)
    output_names = ["logits", "cam"] + (["features"] if with_features else [])
    dynamic_axes = {n: {0: "batch"} for n in ["image", *output_names]}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated but is the one that gives opset 17 (TensorRT 8.5
        # parses nothing newer); the dynamo exporter emits opset 18. See TENSORRT.md.
        warnings.simplefilter("ignore", DeprecationWarning)
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
    onnx.checker.check_model(model, full_check=True)

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
    card = ModelCard(
        name=name,
        classes=tuple(ckpt["classes"]),
        input=spec,
        output=out_spec,
        classifier_bias=tuple(float(b) for b in net.fc.bias.detach().numpy()),
        onnx_sha256=sha256_file(out_onnx),
        precision="fp32",
        opset=OPSET,
        provenance={
            "architecture": f"LaneChangeNet widths={ckpt['widths']} stride={net.feature_stride}",
            "checkpoint": Path(checkpoint).name,
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
    card.save(card_path_for(out_onnx))
    self_check(out_onnx, net, check_images)
    return card


def self_check(onnx_path: Path, net: LaneChangeNet, images: np.ndarray | None = None) -> dict:
    """ORT vs PyTorch and the GAP identity; raises :class:`GapcamError` on any mismatch."""
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
    return {"ort_vs_torch_logits": err_logits, "ort_vs_torch_cam": err_cam, "gap_identity": err_gap}
