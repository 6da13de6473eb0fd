"""What an engine is: its metadata (no TensorRT needed), whether it runs here, and its layers.

Metadata comes from the ``.plan.json``, and the plan's bytes are checked against the sha256
recorded there (no TensorRT needed). Where TensorRT and the engine's GPU are present the
plan is also checked against this device and, with ``layers``, the engine inspector lists each
layer with the precision TensorRT chose (the builder has ``ProfilingVerbosity.DETAILED`` on).
"""

from __future__ import annotations

from pathlib import Path

from engine_builder.metadata import summary_lines
from gapcam.backends.cuda_context import PrimaryContext, query_runtime_info
from gapcam.backends.plan_metadata import (
    PlanMetadata,
    load_plan_metadata,
    plan_problems,
    sha256_bytes,
)

#: Start of the line :func:`inspect_plan` ends with when the plan's bytes are not the ones built.
DAMAGED = "plan bytes     DAMAGED"


def plan_bytes_line(plan_path: Path, meta: PlanMetadata) -> str:
    """The plan file's sha256 against the one ``engine-builder build`` recorded (no TensorRT).

    A plan cut short by a copy or a full disk, or overwritten by another build, fails here before
    anyone tries to deserialise it on the robot.
    """
    recorded = meta.plan_sha256
    if not plan_path.is_file():
        return f"{DAMAGED}: {plan_path} is missing; rebuild: {meta.rebuild_command()}"
    actual = sha256_bytes(plan_path.read_bytes())
    if actual != recorded:
        return (
            f"{DAMAGED}: sha256 {actual[:12]} ({plan_path.stat().st_size} bytes) is not the "
            f"{recorded[:12]} its .plan.json records (truncated, damaged or replaced); "
            f"rebuild: {meta.rebuild_command()}"
        )
    return f"plan bytes     sha256 {actual[:12]} matches its .plan.json"


def inspect_plan(plan_path: Path, *, layers: bool = False, device: int = 0) -> list[str]:
    """Lines describing the plan; the last starts with :data:`DAMAGED` if its bytes are wrong."""
    meta = load_plan_metadata(plan_path)
    lines = [f"engine         {plan_path}", *summary_lines(meta), plan_bytes_line(plan_path, meta)]
    if lines[-1].startswith(DAMAGED):
        return lines
    from engine_builder import trt_api
    from engine_builder.errors import TensorRTUnavailableError

    try:
        trt = trt_api.import_tensorrt()
    except TensorRTUnavailableError as exc:  # no TensorRT: metadata is all we can say
        lines.append(f"this machine   no TensorRT ({str(exc).split(';')[0]}); metadata only")
        return lines
    ctx = PrimaryContext(device)
    try:
        runtime = query_runtime_info(ctx, trt.__version__)
        plan = plan_path.read_bytes() if plan_path.is_file() else b""
        problems = plan_problems(meta, runtime, None, sha256_bytes(plan) if plan else None)
        if problems:
            lines.append(f"this machine   CANNOT run it: {'; '.join(problems)}")
            lines.append(f"               rebuild: {meta.rebuild_command()}")
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
