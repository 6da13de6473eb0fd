"""What an engine is: its metadata (no TensorRT needed), whether it runs here, and its layers.

Metadata comes from the ``.plan.json``. Where TensorRT and the engine's GPU are present the
plan is also checked against this device and, with ``layers``, the engine inspector lists each
layer with the precision TensorRT chose (the builder has ``ProfilingVerbosity.DETAILED`` on).
"""

from __future__ import annotations

from pathlib import Path

from engine_builder.metadata import summary_lines
from gapcam.backends.tensorrt_backend import (
    PrimaryContext,
    load_plan_metadata,
    plan_problems,
    query_runtime_info,
    rebuild_command,
    sha256_bytes,
)


def inspect_plan(plan_path: Path, *, layers: bool = False, device: int = 0) -> list[str]:
    meta = load_plan_metadata(plan_path)
    lines = [f"engine         {plan_path}", *summary_lines(meta)]
    from engine_builder import trt_api
    from engine_builder.errors import TensorRTUnavailableError

    try:
        trt = trt_api.import_tensorrt()
    except TensorRTUnavailableError as exc:  # no TensorRT: metadata is all we can say
        lines.append(f"this machine   no TensorRT ({str(exc).split(';')[0]}); metadata only")
        return lines
    ctx = PrimaryContext(device)
    try:
        runtime = query_runtime_info(ctx)
        plan = plan_path.read_bytes() if plan_path.is_file() else b""
        problems = plan_problems(meta, runtime, None, sha256_bytes(plan) if plan else None)
        if problems:
            lines.append(f"this machine   CANNOT run it: {'; '.join(problems)}")
            lines.append(f"               rebuild: {rebuild_command(meta)}")
            return lines
        lines.append(
            f"this machine   compatible (TensorRT {runtime.tensorrt_version}, {runtime.gpu_name})"
        )
        if layers:
            with ctx.active():
                info = trt_api.engine_layers(trt, plan, trt_api.make_logger(trt))
            lines.append(f"layers         {len(info)}")
            for layer in info:
                lines.append(
                    f"  {layer.get('type', ''):14s} {layer.get('precision', ''):28s} "
                    f"{layer.get('name')}"
                )
    finally:
        ctx.release()
    return lines
