"""`ensure`: build only when missing or stale; one builder at a time across processes."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest
from helpers_plan import ORIN, write_fake_plan

from engine_builder.ensure import ensure_engine, file_lock
from engine_builder.errors import EngineBuilderError
from gapcam.model_card import load_card_for_onnx


def fake_builder(log: Path, delay: float = 0.0):
    def build(req):
        log.open("a").write(f"{req.precision}\n")
        time.sleep(delay)
        card = load_card_for_onnx(req.onnx_path)
        plan = req.out_dir / f"{req.onnx_path.stem}.{req.precision}.plan"
        write_fake_plan(plan, card, precision=req.precision, payload=b"engine %f" % time.time())

    return build


def test_builds_once_then_reuses(tmp_path, shipped_model):
    log = tmp_path / "builds.log"
    out = tmp_path / "engines"
    first = ensure_engine(
        shipped_model, "fp16", out, runtime=ORIN, builder=fake_builder(log), say=lambda m: None
    )
    assert first.built and first.reasons == ["no engine yet"]
    second = ensure_engine(
        shipped_model, "fp16", out, runtime=ORIN, builder=fake_builder(log), say=lambda m: None
    )
    assert not second.built and second.plan_path == first.plan_path
    assert log.read_text().splitlines() == ["fp16"]


def test_rebuilds_for_another_tensorrt(tmp_path, shipped_model):
    import dataclasses

    log = tmp_path / "builds.log"
    out = tmp_path / "engines"
    ensure_engine(
        shipped_model, "fp16", out, runtime=ORIN, builder=fake_builder(log), say=lambda m: None
    )
    jp7 = dataclasses.replace(ORIN, tensorrt_version="10.13.3.9")
    res = ensure_engine(
        shipped_model, "fp16", out, runtime=jp7, builder=fake_builder(log), say=lambda m: None
    )
    assert res.built and "this machine runs 10.13.3.9" in res.reasons[0]


def _race(args):
    model, out, log = args
    res = ensure_engine(
        Path(model),
        "fp16",
        Path(out),
        runtime=ORIN,
        builder=fake_builder(Path(log), 0.5),
        say=lambda m: None,
    )
    return res.built


def test_concurrent_starts_build_exactly_once(tmp_path, shipped_model):
    log = tmp_path / "builds.log"
    args = [(str(shipped_model), str(tmp_path / "engines"), str(log))] * 3
    with mp.get_context("spawn").Pool(3) as pool:
        built = pool.map(_race, args)
    assert sorted(built) == [False, False, True]
    assert log.read_text().splitlines() == ["fp16"]


def test_lock_times_out_with_one_line(tmp_path):
    lock = tmp_path / ".x.lock"
    with file_lock(lock, 1, say=lambda m: None):
        ctx = mp.get_context("spawn")
        proc = ctx.Process(target=_hold_lock_check, args=(str(lock),))
        proc.start()
        proc.join(20)
        assert proc.exitcode == 0


def _hold_lock_check(lock: str) -> None:
    try:
        with file_lock(Path(lock), 0.3, say=lambda m: None):
            raise SystemExit(3)
    except EngineBuilderError as exc:
        raise SystemExit(0 if "still locked" in str(exc) and "\n" not in str(exc) else 4) from None


def test_ensure_without_tensorrt_is_a_one_line_error(tmp_path, shipped_model):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(EngineBuilderError, match="TensorRT is not available"):
            ensure_engine(shipped_model, "fp16", tmp_path, say=lambda m: None)
    else:
        pytest.skip("TensorRT present: covered by the GPU tests")
