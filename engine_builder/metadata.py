"""The ``.plan.json`` written beside every engine, and the decisions taken from it.

A plan is only valid for one GPU model and one exact TensorRT version, and it is only the model
it was built from; none of that can be read back from the plan itself. The metadata records
it - TensorRT version, GPU name / compute capability / SM count, CUDA driver, L4T and JetPack,
the ONNX sha256 (and the FP32 reference for Q/DQ models), precision and how INT8 was obtained
(calibration set hash, cache), IO tensors, builder settings, build time, the verification result
and the model card - so that loading, ``ensure`` and ``inspect`` can decide without TensorRT.

The schema (:class:`gapcam.backends.plan_metadata.PlanMetadata`) and the runtime half of the
check (:func:`~gapcam.backends.plan_metadata.plan_problems`) live in the core so the backend does
not depend on this package; :func:`stale_reasons` adds what only a
builder knows (which ONNX and precision are wanted now).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path
from typing import Any

from engine_builder import __version__
from gapcam.backends.plan_metadata import (
    BuildInfo,
    OnnxSource,
    PlanMetadata,
    RuntimeInfo,
    jetpack_for_l4t,
    metadata_path_for,
    plan_problems,
    sha256_bytes,
)
from gapcam.errors import GapcamError
from gapcam.model_card import ModelCard, sha256_file


def make_metadata(
    *,
    plan: bytes,
    plan_name: str,
    precision: str,
    onnx_path: Path,
    onnx_sha256: str,
    fp32_reference: dict[str, str] | None,
    int8: dict[str, Any] | None,
    runtime: RuntimeInfo,
    strongly_typed: bool,
    io: list[dict[str, Any]],
    builder: dict[str, Any],
    build_seconds: float,
    command: str,
    card: ModelCard,
) -> PlanMetadata:
    """Everything a later reader needs to trust (or refuse) this plan."""
    return PlanMetadata(
        plan_file=plan_name,
        plan_sha256=sha256_bytes(plan),
        plan_bytes=len(plan),
        precision=precision,
        onnx=OnnxSource(str(onnx_path), onnx_sha256, fp32_reference),
        tensorrt_version=runtime.tensorrt_version,
        strongly_typed=strongly_typed,
        gpu=runtime.gpu(),
        cuda_driver=runtime.cuda_driver,
        platform={
            "l4t": runtime.l4t,
            "jetpack": jetpack_for_l4t(runtime.l4t),
            "machine": platform.machine(),
            "python": platform.python_version(),
        },
        io=io,
        builder=builder,
        build=BuildInfo(
            seconds=round(build_seconds, 1),
            finished=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            command=command,
            engine_builder=__version__,
        ),
        model_card=json.loads(json.dumps(card.to_dict())),  # the JSON form, as read back
        int8=int8,
    )


def write_json_atomic(path: Path, data: dict[str, Any]) -> Path:
    """Write via a temp file and ``os.replace`` so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def write_metadata(plan_path: Path, meta: PlanMetadata) -> Path:
    return write_json_atomic(metadata_path_for(plan_path), meta.to_dict())


def read_metadata(plan_path: Path) -> PlanMetadata | None:
    """The metadata, or None when missing, unreadable or of another schema (``ensure`` then
    rebuilds)."""
    path = metadata_path_for(plan_path)
    try:
        return PlanMetadata.from_dict(json.loads(path.read_text()), path)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, GapcamError):
        return None


def stale_reasons(
    plan_path: Path,
    *,
    onnx_sha256: str,
    precision: str,
    runtime: RuntimeInfo | None,
    calibration_hash: str | None = None,
) -> list[str]:
    """Why the plan at ``plan_path`` must be (re)built for this ONNX, precision and device.

    Empty means the plan can be used as is. ``runtime`` None skips the device checks (used by
    tests and by ``inspect`` without TensorRT).
    """
    if not plan_path.is_file():
        return ["no engine yet"]
    meta = read_metadata(plan_path)
    if meta is None:
        return ["engine metadata missing or unreadable"]
    reasons = plan_problems(meta, runtime, None, sha256_file(plan_path))
    if meta.onnx.sha256 != onnx_sha256:
        reasons.append(f"ONNX changed ({meta.onnx.sha256[:12]} -> {onnx_sha256[:12]})")
    if meta.precision != precision:
        reasons.append(f"precision {meta.precision} != requested {precision}")
    if calibration_hash and meta.calibration_set_hash != calibration_hash:
        reasons.append("calibration set changed")
    if meta.failed_verification:
        reasons.append("last verification failed")
    return reasons


def summary_lines(meta: PlanMetadata) -> list[str]:
    """Human-readable metadata for ``inspect`` (works without TensorRT)."""
    gpu, plat, onnx, card = meta.gpu, meta.platform, meta.onnx, meta.model_card
    builder, int8, build = meta.builder, meta.int8 or {}, meta.build
    lines = [
        f"model          {card.get('name')} classes={card.get('classes')}",
        f"precision      {meta.precision}"
        + (
            f" (int8 from {int8.get('method')}"
            + (f", scales {int8['scales']}" if int8.get("scales") else "")
            + ")"
            if int8
            else ""
        ),
        f"onnx           {onnx.path} sha256={onnx.sha256[:12]}",
    ]
    if onnx.fp32_reference:
        ref = onnx.fp32_reference
        lines.append(f"fp32 reference {ref.get('path')} sha256={str(ref.get('sha256'))[:12]}")
    if int8.get("calibration_set"):
        cs = int8["calibration_set"]
        lines.append(
            f"calibration    {cs.get('name')} ({cs.get('images')} images) "
            f"set_hash={str(cs.get('set_hash'))[:12]}"
        )
    if int8.get("calibration_cache"):
        cc = int8["calibration_cache"]
        lines.append(f"calib cache    {cc.get('path')} sha256={str(cc.get('sha256'))[:12]}")
    jetpack = plat.get("jetpack") or jetpack_for_l4t(plat.get("l4t"))
    lines += [
        f"tensorrt       {meta.tensorrt_version}"
        + (" (strongly typed)" if meta.strongly_typed else ""),
        f"gpu            {gpu.name} sm {gpu.compute_capability} ({gpu.multiprocessors} SMs)",
        f"platform       L4T {plat.get('l4t')} JetPack {jetpack} CUDA driver {meta.cuda_driver}",
        f"batch profile  {builder.get('min_batch')}/{builder.get('opt_batch')}/{builder.get('max_batch')}"
        f" workspace {builder.get('workspace_mb')} MiB",
        f"built          {build.finished} in {build.seconds} s",
        f"rebuild        {build.command}",
    ]
    for t in meta.io:
        lines.append(
            f"io             {t.get('mode'):6s} {t.get('name')} {t.get('shape')} {t.get('dtype')}"
        )
    ver = meta.verification
    if ver:
        c = ver.get("comparison") or {}
        lines.append(
            f"verification   {'PASS' if ver.get('passed') else 'FAIL'}: agreement "
            f"{c.get('top1_agreement')} CAM corr {c.get('cam_correlation_mean')} on "
            f"{c.get('images')} images"
        )
    return lines
