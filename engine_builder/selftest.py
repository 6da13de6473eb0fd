"""``engine-builder selftest``: check a new Jetson end to end with the shipped model, one table out.

Builds (and verifies against ONNX Runtime on the CPU) an fp16 engine, an int8 engine from the
Q/DQ model (quantised here, on the CPU), and - where TensorRT still has it (< 11) - an int8
engine from ``IInt8EntropyCalibrator2``; then benchmarks each at batch 1 and 2 next to ONNX
Runtime on the CPU. Any failed step makes the exit status non-zero, the table still prints.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine_builder import trt_api
from engine_builder.bench import BenchRow, bench_backend
from engine_builder.build import BuildRequest, build_engine
from engine_builder.calibration_set import (
    DEFAULT_CALIBRATION_SET,
    DEFAULT_VALIDATION_SET,
    generate_default_sets,
    load_image_set,
    set_is_complete,
)
from engine_builder.errors import EngineBuilderError, GapcamError
from engine_builder.quantize import qdq_path_for, quantize_model
from gapcam.backends.onnxruntime_backend import OnnxRuntimeBackend
from gapcam.model_card import load_card_for_onnx


def shipped_model() -> Path:
    """The default model of every tool (``$GAPCAM_MODEL`` or the checkout's models/)."""
    from gapcam.shipped import default_model

    return default_model()


@dataclass
class Row:
    name: str
    status: str = "skipped"
    build_s: float | None = None
    agreement: float | None = None
    cam_corr: float | None = None
    max_logit_err: float | None = None
    bench: list[BenchRow] = field(default_factory=list)
    note: str = ""


def format_table(rows: list[Row]) -> list[str]:
    head = (
        f"{'engine':22s} {'status':7s} {'build s':>7s} {'agree':>6s} {'CAM r':>6s} "
        f"{'max dlogit':>10s} {'b1 p50':>7s} {'b1 p99':>7s} {'b2 p50':>7s} {'b2 img/s':>8s}  note"
    )
    out = [head, "-" * len(head)]

    def f(v: float | None, fmt: str) -> str:
        return format(v, fmt) if v is not None else "-"

    for r in rows:
        b = {x.batch: x for x in r.bench}
        b1, b2 = b.get(1), b.get(2)
        out.append(
            f"{r.name:22s} {r.status:7s} {f(r.build_s, '7.1f'):>7s} {f(r.agreement, '6.3f'):>6s} "
            f"{f(r.cam_corr, '6.3f'):>6s} {f(r.max_logit_err, '10.4f'):>10s} "
            f"{f(b1 and b1.p50_ms, '7.2f'):>7s} {f(b1 and b1.p99_ms, '7.2f'):>7s} "
            f"{f(b2 and b2.p50_ms, '7.2f'):>7s} {f(b2 and b2.images_per_s, '8.0f'):>8s}  {r.note}"
        )
    return out


def run_selftest(
    out_dir: Path,
    *,
    model: Path | None = None,
    iterations: int = 200,
    verify_images: int = 256,
    say: Callable[[str], None] = print,
) -> tuple[list[Row], bool]:
    trt = trt_api.import_tensorrt()  # refuse early, with the one-line reason
    caps = trt_api.capabilities(trt)
    model = model or shipped_model()
    card = load_card_for_onnx(model)
    missing = [
        name
        for name, path in (
            ("calibration", DEFAULT_CALIBRATION_SET),
            ("validation", DEFAULT_VALIDATION_SET),
        )
        if not set_is_complete(path)
    ]
    if missing:  # a fresh clone has the manifests only: render the images (1-2 minutes)
        generate_default_sets(missing, card.input, say=say, progress=False)
    calib = load_image_set(DEFAULT_CALIBRATION_SET, card.input)
    val = load_image_set(DEFAULT_VALIDATION_SET, card.input)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []

    ort_row = Row("onnxruntime fp32 (CPU)")
    ort = OnnxRuntimeBackend(model, card)
    ort_row.bench = bench_backend(ort, iterations=max(20, iterations // 4))
    ort_row.status = "ok"
    rows.append(ort_row)

    def engine_row(name: str, req_factory: Callable[[], BuildRequest]) -> None:
        row = Row(name)
        rows.append(row)
        try:
            started = time.monotonic()
            result = build_engine(req_factory(), say)
            row.build_s = time.monotonic() - started
            comp = (result.metadata.verification or {}).get("comparison") or {}
            row.agreement = comp.get("top1_agreement")
            row.cam_corr = comp.get("cam_correlation_mean")
            row.max_logit_err = comp.get("max_logit_error")
            from gapcam.backends.tensorrt_backend import TensorRTBackend

            backend = TensorRTBackend(result.plan_path)
            try:
                row.bench = bench_backend(backend, iterations=iterations)
            finally:
                backend.close()
            row.status = "PASS" if result.verified else "FAIL"
        except GapcamError as exc:
            row.status, row.note = "FAIL", str(exc)[:160]
        except Exception as exc:  # a selftest reports every failure and goes on
            row.status, row.note = "ERROR", f"{type(exc).__name__}: {exc}"[:160]
            say(traceback.format_exc())

    def req(onnx: Path, precision: str, **kw) -> BuildRequest:
        return BuildRequest(
            onnx,
            precision,
            out_dir,
            verify_data=DEFAULT_VALIDATION_SET,
            verify_images=verify_images,
            **kw,
        )

    engine_row("tensorrt fp16", lambda: req(model, "fp16"))
    qdq = out_dir / qdq_path_for(model).name
    try:
        say("quantising the shipped model to Q/DQ (ONNX Runtime, CPU)")
        quantize_model(model, card, calib, qdq, validation=val.subset(verify_images), say=say)
        engine_row("tensorrt int8 (Q/DQ)", lambda: req(qdq, "int8", reference_onnx=model))
    except EngineBuilderError as exc:
        rows.append(Row("tensorrt int8 (Q/DQ)", "FAIL", note=str(exc)[:160]))
    if caps.entropy_calibrator:
        engine_row(
            "tensorrt int8 (calib)",
            lambda: req(model, "int8", calib=DEFAULT_CALIBRATION_SET),
        )
    else:
        rows.append(Row("tensorrt int8 (calib)", "n/a", note="TensorRT 11: calibrator removed"))
    ok = all(r.status in ("ok", "PASS", "n/a") for r in rows)
    return rows, ok
