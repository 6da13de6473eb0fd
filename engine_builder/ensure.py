"""Build an engine only when it is missing or stale for this device; safe under concurrency.

Used by the Docker entrypoint (``engine-builder ensure MODEL.onnx --precision fp16 --out DIR``):
several containers may start at once on one Jetson with the same engine cache volume. An
exclusive ``fcntl`` lock on ``DIR/.<plan>.lock`` lets exactly one of them build while the others
wait, then find the fresh engine and use it; the build itself publishes with ``os.replace``, so a
reader never sees a half-written plan, and a plan whose metadata does not match it (sha256) is
treated as stale. A crashed builder releases the lock with its process.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine_builder.build import BuildRequest, build_engine, plan_path_for
from engine_builder.calibration_set import load_image_set
from engine_builder.errors import EngineBuilderError
from engine_builder.metadata import stale_reasons
from gapcam.backends.plan_metadata import RuntimeInfo
from gapcam.model_card import load_card_for_onnx

#: How long a starting container waits for another one's build (builds take minutes).
DEFAULT_LOCK_TIMEOUT_S = 1800.0


@dataclass
class EnsureResult:
    plan_path: Path
    built: bool
    reasons: list[str] = field(default_factory=list)


@contextlib.contextmanager
def file_lock(
    path: Path, timeout: float = DEFAULT_LOCK_TIMEOUT_S, say: Callable[[str], None] = print
) -> Iterator[None]:
    """Exclusive advisory lock on ``path`` (created if needed), waiting up to ``timeout`` s."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if not announced:
                    say(f"waiting for another process building into {path.parent} ...")
                    announced = True
                if time.monotonic() > deadline:
                    raise EngineBuilderError(
                        f"{path}: still locked by another build after {timeout:.0f} s; "
                        "is a build hanging? (the lock goes away with its process)"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the flock


def ensure_engine(
    onnx_path: str | Path,
    precision: str,
    out_dir: str | Path,
    *,
    calib: Path | None = None,
    verify_data: Path | None = None,
    verify: bool = True,
    runtime: RuntimeInfo | None = None,
    request: BuildRequest | None = None,
    builder: Callable[[BuildRequest], object] | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
    say: Callable[[str], None] = print,
) -> EnsureResult:
    """Return the engine for ``onnx_path`` at ``precision`` in ``out_dir``, building if needed.

    ``runtime`` is this device (queried from TensorRT/CUDA when None); ``builder`` defaults to
    :func:`engine_builder.build.build_engine` (tests inject a fake one).
    """
    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    card = load_card_for_onnx(onnx_path)
    plan_path = plan_path_for(onnx_path, precision, out_dir)
    calib_hash = load_image_set(calib, card.input).hash if calib else None
    if runtime is None:
        runtime = _this_device()
    with file_lock(out_dir / f".{plan_path.name}.lock", lock_timeout, say):
        reasons = stale_reasons(
            plan_path,
            onnx_sha256=card.onnx_sha256,
            precision=precision,
            runtime=runtime,
            calibration_hash=calib_hash,
        )
        if not reasons:
            say(
                f"{plan_path} is up to date for {runtime.gpu_name}, TensorRT {runtime.tensorrt_version}"
            )
            return EnsureResult(plan_path, built=False)
        say(f"building {plan_path.name}: {'; '.join(reasons)}")
        req = request or BuildRequest(
            onnx_path, precision, out_dir, calib=calib, verify=verify, verify_data=verify_data
        )
        (builder or (lambda r: build_engine(r, say)))(req)
        return EnsureResult(plan_path, built=True, reasons=reasons)


def _this_device() -> RuntimeInfo:
    from engine_builder import trt_api
    from gapcam.backends.cuda_context import PrimaryContext, query_runtime_info

    trt = trt_api.import_tensorrt()
    ctx = PrimaryContext(0)
    try:
        return query_runtime_info(ctx, trt.__version__)
    finally:
        ctx.release()
