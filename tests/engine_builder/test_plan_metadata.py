"""Engine metadata (.plan.json) and the compatibility decisions taken from it, without a GPU."""

from __future__ import annotations

import dataclasses
import json

import pytest
from helpers_plan import ORIN, write_fake_plan

from engine_builder.metadata import stale_reasons, summary_lines
from gapcam.backends.plan_metadata import (
    PLAN_METADATA_SCHEMA,
    GpuInfo,
    PlanMetadata,
    incompatibility_message,
    jetpack_for_l4t,
    load_plan_metadata,
    metadata_path_for,
    plan_problems,
    read_l4t_release,
    sha256_bytes,
)
from gapcam.errors import GapcamError


@pytest.fixture()
def plan(tmp_path, card):
    path = tmp_path / "engines" / "lane_change.fp16.plan"
    return path, write_fake_plan(path, card)


def test_metadata_records_what_compatibility_depends_on(plan, card):
    path, meta = plan
    assert metadata_path_for(path).name == "lane_change.fp16.plan.json"
    loaded = load_plan_metadata(path)
    assert loaded == meta
    raw = json.loads(metadata_path_for(path).read_text())
    assert raw == meta.to_dict() and PlanMetadata.from_dict(raw) == meta  # the JSON round trip
    assert raw["schema"] == PLAN_METADATA_SCHEMA and raw["tensorrt"]["version"] == "10.3.0.30"
    assert raw["gpu"] == {
        "name": "Orin",
        "compute_capability": "8.7",
        "multiprocessors": 16,
        "total_memory_mb": 62000,
    }
    assert loaded.gpu == GpuInfo("Orin", "8.7", 16, 62000)
    assert loaded.platform["l4t"] == "36.4.3" and loaded.platform["jetpack"] == "6.1/6.2"
    assert loaded.onnx.sha256 == card.onnx_sha256
    assert loaded.plan_sha256 == sha256_bytes(path.read_bytes())
    assert loaded.card() == card
    assert loaded.build.command.startswith("engine-builder build")
    assert loaded.rebuild_command() == loaded.build.command


def test_same_device_same_card_is_compatible(plan, card):
    path, meta = plan
    assert plan_problems(meta, ORIN, card, sha256_bytes(path.read_bytes())) == []


@pytest.mark.parametrize(
    "change,expect",
    [
        (
            {"tensorrt_version": "10.3.0.26"},
            "built with TensorRT 10.3.0.30, this machine runs 10.3.0.26",
        ),
        (
            {"compute_capability": "7.2", "gpu_name": "Xavier"},
            "compute capability 8.7 (Orin), this GPU is 7.2 (Xavier)",
        ),
        ({"multiprocessors": 8}, "with 16 SMs, this is 'Orin' with 8 SMs"),
    ],
)
def test_other_trt_or_gpu_is_refused_with_a_reason(plan, card, change, expect):
    _, meta = plan
    problems = plan_problems(meta, dataclasses.replace(ORIN, **change), card)
    assert len(problems) == 1 and expect in problems[0]


def test_other_card_and_swapped_plan_are_refused(plan, card):
    path, meta = plan
    other = dataclasses.replace(card, onnx_sha256="f" * 64)
    assert "the model card describes ffffffffffff" in plan_problems(meta, ORIN, other)[0]
    assert "not the one its .plan.json describes" in plan_problems(meta, ORIN, card, "0" * 64)[0]


def test_the_message_is_one_line_with_the_rebuild_command(plan):
    path, meta = plan
    msg = incompatibility_message(
        path, meta, ["built with TensorRT 8.6.2, this machine runs 10.3.0.30"]
    )
    assert "\n" not in msg and "rebuild it on this device: engine-builder build" in msg
    assert str(GapcamError(msg)) == msg


def test_missing_or_foreign_metadata_is_refused(tmp_path):
    plan = tmp_path / "x.plan"
    plan.write_bytes(b"x")
    with pytest.raises(GapcamError, match="metadata not found"):
        load_plan_metadata(plan)
    metadata_path_for(plan).write_text('{"schema": "other"}')
    with pytest.raises(GapcamError, match="schema"):
        load_plan_metadata(plan)
    metadata_path_for(plan).write_text("{broken")
    with pytest.raises(GapcamError, match="not valid JSON"):
        load_plan_metadata(plan)
    metadata_path_for(plan).write_text(json.dumps({"schema": PLAN_METADATA_SCHEMA}))
    with pytest.raises(GapcamError, match=r"x.plan.json: engine metadata is incomplete .*rebuild"):
        load_plan_metadata(plan)


def test_stale_reasons_for_ensure(plan, card, tmp_path):
    path, meta = plan
    ok = stale_reasons(path, onnx_sha256=card.onnx_sha256, precision="fp16", runtime=ORIN)
    assert ok == []
    assert stale_reasons(
        tmp_path / "none.plan", onnx_sha256="a", precision="fp16", runtime=ORIN
    ) == ["no engine yet"]
    reasons = stale_reasons(path, onnx_sha256="b" * 64, precision="int8", runtime=ORIN)
    assert any("ONNX changed" in r for r in reasons) and any("precision fp16" in r for r in reasons)
    newer = dataclasses.replace(ORIN, tensorrt_version="10.3.0.31")
    assert stale_reasons(path, onnx_sha256=card.onnx_sha256, precision="fp16", runtime=newer)
    path.write_bytes(b"tampered")
    assert any(
        "not the one" in r
        for r in stale_reasons(path, onnx_sha256=card.onnx_sha256, precision="fp16", runtime=ORIN)
    )
    metadata_path_for(path).unlink()
    assert stale_reasons(path, onnx_sha256=card.onnx_sha256, precision="fp16", runtime=ORIN) == [
        "engine metadata missing or unreadable"
    ]


def test_l4t_and_jetpack(tmp_path):
    rel = tmp_path / "nv_tegra_release"
    rel.write_text(
        "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64\n"
    )
    assert read_l4t_release(rel) == "36.4.3"
    assert jetpack_for_l4t("36.4.3") == "6.1/6.2" and jetpack_for_l4t("35.4.1") == "5.1.2"
    assert jetpack_for_l4t("38.2.0") == "7.x" and jetpack_for_l4t(None) is None
    assert read_l4t_release(tmp_path / "absent") is None


def test_summary_lines_work_without_tensorrt(plan):
    _, meta = plan
    text = "\n".join(summary_lines(meta))
    assert "precision      fp16" in text and "Orin sm 8.7" in text and "JetPack 6.1/6.2" in text
