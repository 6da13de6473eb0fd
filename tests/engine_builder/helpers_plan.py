"""Fake engines for CPU tests: a plan file of random bytes with real metadata beside it."""

from __future__ import annotations

from pathlib import Path

from engine_builder.metadata import make_metadata, write_metadata
from gapcam.backends.plan_metadata import PlanMetadata, RuntimeInfo
from gapcam.model_card import ModelCard

ORIN = RuntimeInfo("10.3.0.30", "Orin", "8.7", 16, 62000, "12.6", "36.4.3")


def write_fake_plan(
    plan_path: Path,
    card: ModelCard,
    *,
    runtime: RuntimeInfo = ORIN,
    precision: str = "fp16",
    payload: bytes = b"not a real engine",
    onnx_path: str = "../models/lane_change.onnx",
) -> PlanMetadata:
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_bytes(payload)
    meta = make_metadata(
        plan=payload,
        plan_name=plan_path.name,
        precision=precision,
        onnx_path=Path(onnx_path),
        onnx_sha256=card.onnx_sha256,
        fp32_reference=None,
        int8=None,
        runtime=runtime,
        strongly_typed=False,
        io=[{"name": "image", "mode": "input", "shape": [-1, 3, 128, 128], "dtype": "float32"}],
        builder={"min_batch": 1, "opt_batch": 2, "max_batch": 4, "workspace_mb": 1024},
        build_seconds=12.3,
        command=f"engine-builder build {onnx_path} --precision {precision} --out {plan_path.parent}",
        card=card,
    )
    write_metadata(plan_path, meta)
    return meta
