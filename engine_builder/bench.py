"""Latency and throughput of a backend (TensorRT engine or ONNX model), batch 1 and 2.

Batch 2 is the two rear-side cameras of a vehicle processed together. Times are wall-clock per
``infer`` call, host to host (copies included), after warm-up, as the node experiences them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from gapcam.backends.base import Backend
from gapcam.model_card import expected_input_shape


@dataclass
class BenchRow:
    batch: int
    iterations: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    images_per_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def bench_backend(
    backend: Backend,
    batch_sizes: Sequence[int] = (1, 2),
    *,
    iterations: int = 200,
    warmup: int = 20,
    seed: int = 0,
) -> list[BenchRow]:
    """Time ``iterations`` calls per batch size on a fixed random input."""
    spec = backend.card.input
    rng = np.random.default_rng(seed)
    rows = []
    for n in batch_sizes:
        shape = [n if d == "N" else d for d in expected_input_shape(spec)]  # NCHW or NHWC
        batch = rng.standard_normal(shape).astype(np.float32)
        for _ in range(warmup):
            backend.infer(batch)
        times = np.empty(iterations)
        for i in range(iterations):
            t0 = time.perf_counter()
            backend.infer(batch)
            times[i] = time.perf_counter() - t0
        ms = times * 1e3
        rows.append(
            BenchRow(
                batch=n,
                iterations=iterations,
                p50_ms=float(np.percentile(ms, 50)),
                p90_ms=float(np.percentile(ms, 90)),
                p99_ms=float(np.percentile(ms, 99)),
                mean_ms=float(ms.mean()),
                images_per_s=float(n * iterations / times.sum()),
            )
        )
    return rows


def format_rows(rows: Sequence[BenchRow]) -> list[str]:
    lines = ["batch   p50 ms   p90 ms   p99 ms   mean ms   images/s"]
    for r in rows:
        lines.append(
            f"{r.batch:5d} {r.p50_ms:8.3f} {r.p90_ms:8.3f} {r.p99_ms:8.3f} {r.mean_ms:9.3f} "
            f"{r.images_per_s:10.1f}"
        )
    return lines
