"""The ``.plan.json`` beside every TensorRT engine: its schema (:class:`PlanMetadata`) and the
decisions taken from it without TensorRT.

A plan is only valid for one GPU model and one exact TensorRT version, and it is only the model
it was built from; none of that can be read back from the plan itself. The metadata records it:
TensorRT version, GPU name / compute capability / SM count, CUDA driver, L4T and JetPack, the
ONNX sha256 (and the FP32 reference for Q/DQ models), precision and how INT8 was obtained
(calibration set hash, cache), IO tensors, builder settings, build time, the verification result
and the model card.

The engine builder writes it (``engine_builder.metadata.make_metadata``) and the backend, ``ensure``
and ``inspect`` read it - all through :class:`PlanMetadata`, so the keys are spelt here only. The
JSON layout is that of schema ``gapcam-plan/1``; the free-form reports (``int8``, ``builder``,
``io``, ``verification``, ``platform``) stay dictionaries, what decisions read is typed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gapcam.errors import GapcamError
from gapcam.model_card import ModelCard

#: Identifies the metadata layout; bump when a key this module reads changes meaning.
PLAN_METADATA_SCHEMA = "gapcam-plan/1"
L4T_RELEASE_FILE = Path("/etc/nv_tegra_release")

#: L4T major.minor -> JetPack release (the JetPack/TensorRT matrix of the README).
_JETPACK_BY_L4T = {
    (35, 1): "5.0.2",
    (35, 2): "5.1",
    (35, 3): "5.1.1",
    (35, 4): "5.1.2",
    (35, 5): "5.1.3",
    (35, 6): "5.1.4",
    (36, 2): "6.0 DP",
    (36, 3): "6.0",
    (36, 4): "6.1/6.2",
    (38, 2): "7.0",
}


def metadata_path_for(plan_path: str | Path) -> Path:
    """``x.plan`` -> ``x.plan.json``."""
    p = Path(plan_path)
    return p.with_name(p.name + ".json")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_l4t_release(path: str | Path = L4T_RELEASE_FILE) -> str | None:
    """L4T version from ``/etc/nv_tegra_release`` (``# R36 (release), REVISION: 4.0`` -> 36.4.0)."""
    p = Path(path)
    if not p.is_file():
        return None
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", p.read_text(errors="replace"))
    return f"{m.group(1)}.{m.group(2)}" if m else None


def jetpack_for_l4t(l4t: str | None) -> str | None:
    """JetPack release of an L4T version, where known."""
    if not l4t:
        return None
    parts = [int(x) for x in re.findall(r"\d+", l4t)[:2]]
    if len(parts) < 2:
        return None
    if parts[0] == 38:
        return "7.x"
    return _JETPACK_BY_L4T.get((parts[0], parts[1]))


@dataclass(frozen=True)
class RuntimeInfo:
    """What a plan's compatibility depends on, as found on the running machine."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str  #: "8.7"
    multiprocessors: int
    total_memory_mb: int = 0
    cuda_driver: str = ""
    l4t: str | None = None

    def gpu(self) -> GpuInfo:
        return GpuInfo(
            self.gpu_name, self.compute_capability, self.multiprocessors, self.total_memory_mb
        )


@dataclass(frozen=True)
class GpuInfo:
    """The GPU a plan was built on (a plan runs on this GPU model only)."""

    name: str
    compute_capability: str
    multiprocessors: int
    total_memory_mb: int = 0


@dataclass(frozen=True)
class OnnxSource:
    """The ONNX a plan was built from; paths are relative to the plan's directory."""

    path: str
    sha256: str
    #: ``{"path", "sha256"}`` of the FP32 model a Q/DQ (int8) ONNX was quantised from
    fp32_reference: dict[str, str] | None = None

    def reference(self) -> tuple[str, str]:
        """(path, sha256) of the FP32 model to verify against: the reference, else the source."""
        ref = self.fp32_reference or {}
        return (ref["path"], ref["sha256"]) if ref else (self.path, self.sha256)

    def sha256s(self) -> set[str]:
        """Every ONNX hash the plan stands for (the source, and its FP32 reference)."""
        return {self.sha256, *((self.fp32_reference or {}).get("sha256") or "",)} - {""}


@dataclass(frozen=True)
class BuildInfo:
    seconds: float
    finished: str  #: ISO time, UTC
    command: str  #: the command that rebuilds this engine
    engine_builder: str  #: version of the tool


@dataclass(frozen=True)
class PlanMetadata:
    """One engine's ``.plan.json``."""

    plan_file: str
    plan_sha256: str
    plan_bytes: int
    precision: str
    onnx: OnnxSource
    tensorrt_version: str
    strongly_typed: bool
    gpu: GpuInfo
    cuda_driver: str
    platform: dict[str, Any]  #: l4t, jetpack, machine, python
    io: list[dict[str, Any]]  #: name, mode, shape, dtype per tensor
    builder: dict[str, Any]  #: builder settings and timing-cache sizes
    build: BuildInfo
    model_card: dict[str, Any]
    int8: dict[str, Any] | None = None  #: how the int8 scales were obtained
    verification: dict[str, Any] | None = None  #: the result of ``verify`` at build time
    schema: str = PLAN_METADATA_SCHEMA
    extra: dict[str, Any] = field(default_factory=dict)  #: keys this version does not know

    # ------------------------------------------------------------------ what decisions read
    def card(self) -> ModelCard:
        return ModelCard.from_dict(self.model_card)

    @property
    def card_classes(self) -> tuple[str, ...]:
        return tuple(self.model_card.get("classes", ()))

    @property
    def calibration_set_hash(self) -> str | None:
        return ((self.int8 or {}).get("calibration_set") or {}).get("set_hash")

    @property
    def failed_verification(self) -> bool:
        """Verification ran, failed and was not forced (``ensure`` rebuilds such a plan)."""
        v = self.verification or {}
        return bool(v) and v.get("passed") is False and not v.get("forced")

    def rebuild_command(self) -> str:
        """The command that rebuilds this engine (as recorded at build time)."""
        return self.build.command or (
            f"engine-builder build {self.onnx.path or 'MODEL.onnx'} --precision "
            f"{self.precision} --out DIR"
        )

    def with_verification(self, verification: dict[str, Any]) -> PlanMetadata:
        return replace(self, verification=verification)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """The ``gapcam-plan/1`` JSON layout."""
        return {
            "schema": self.schema,
            "plan_file": self.plan_file,
            "plan_sha256": self.plan_sha256,
            "plan_bytes": self.plan_bytes,
            "precision": self.precision,
            "int8": self.int8,
            "onnx": {
                "path": self.onnx.path,
                "sha256": self.onnx.sha256,
                "fp32_reference": self.onnx.fp32_reference,
            },
            "tensorrt": {"version": self.tensorrt_version, "strongly_typed": self.strongly_typed},
            "gpu": {
                "name": self.gpu.name,
                "compute_capability": self.gpu.compute_capability,
                "multiprocessors": self.gpu.multiprocessors,
                "total_memory_mb": self.gpu.total_memory_mb,
            },
            "cuda": {"driver": self.cuda_driver},
            "platform": self.platform,
            "io": self.io,
            "builder": self.builder,
            "build": {
                "seconds": self.build.seconds,
                "finished": self.build.finished,
                "command": self.build.command,
                "engine_builder": self.build.engine_builder,
            },
            "verification": self.verification,
            "model_card": self.model_card,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str | Path = ".plan.json") -> PlanMetadata:
        """Parse the JSON layout; :class:`GapcamError` naming ``where`` and the fix otherwise."""
        schema = data.get("schema") if isinstance(data, dict) else None
        if schema != PLAN_METADATA_SCHEMA:
            raise GapcamError(
                f"{where}: engine metadata schema {schema!r} is not {PLAN_METADATA_SCHEMA!r}; "
                "rebuild the engine with this version of engine-builder"
            )
        try:
            onnx, trt, gpu, build = data["onnx"], data["tensorrt"], data["gpu"], data["build"]
            known = set(_KEYS)
            return cls(
                plan_file=str(data["plan_file"]),
                plan_sha256=str(data["plan_sha256"]),
                plan_bytes=int(data["plan_bytes"]),
                precision=str(data["precision"]),
                onnx=OnnxSource(
                    str(onnx.get("path") or ""), str(onnx["sha256"]), onnx.get("fp32_reference")
                ),
                tensorrt_version=str(trt["version"]),
                strongly_typed=bool(trt.get("strongly_typed", False)),
                gpu=GpuInfo(
                    str(gpu["name"]),
                    str(gpu["compute_capability"]),
                    int(gpu["multiprocessors"]),
                    int(gpu.get("total_memory_mb") or 0),
                ),
                cuda_driver=str((data.get("cuda") or {}).get("driver") or ""),
                platform=dict(data.get("platform") or {}),
                io=list(data.get("io") or []),
                builder=dict(data.get("builder") or {}),
                build=BuildInfo(
                    float(build.get("seconds") or 0.0),
                    str(build.get("finished") or ""),
                    str(build.get("command") or ""),
                    str(build.get("engine_builder") or ""),
                ),
                model_card=dict(data["model_card"]),
                int8=data.get("int8"),
                verification=data.get("verification"),
                schema=schema,
                extra={k: v for k, v in data.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise GapcamError(
                f"{where}: engine metadata is incomplete ({type(exc).__name__}: {exc}); rebuild "
                "the engine with `engine-builder build`"
            ) from exc


_KEYS = (
    "schema",
    "plan_file",
    "plan_sha256",
    "plan_bytes",
    "precision",
    "int8",
    "onnx",
    "tensorrt",
    "gpu",
    "cuda",
    "platform",
    "io",
    "builder",
    "build",
    "verification",
    "model_card",
)


def load_plan_metadata(plan_path: str | Path) -> PlanMetadata:
    """Read the ``.plan.json`` of a plan; a plan without one is refused (provenance unknown)."""
    meta_path = metadata_path_for(plan_path)
    if not meta_path.is_file():
        raise GapcamError(
            f"{meta_path}: engine metadata not found; engines must be built with "
            "`engine-builder build` (it writes the .plan.json beside the .plan)"
        )
    try:
        data = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GapcamError(f"{meta_path}: engine metadata is not valid JSON ({exc})") from exc
    return PlanMetadata.from_dict(data, meta_path)


def plan_problems(
    meta: PlanMetadata,
    here: RuntimeInfo | None = None,
    card: ModelCard | None = None,
    plan_sha256: str | None = None,
) -> list[str]:
    """Why this plan must not run here (empty when it may); each reason is short and specific.

    ``here`` is the running TensorRT/GPU, ``card`` the model card the caller expects,
    ``plan_sha256`` the hash of the plan file actually on disk.
    """
    problems: list[str] = []
    if plan_sha256 is not None and meta.plan_sha256 != plan_sha256:
        problems.append(
            "the .plan file is not the one its .plan.json describes "
            f"(sha256 {plan_sha256[:12]} vs {meta.plan_sha256[:12]})"
        )
    if here is not None:
        if meta.tensorrt_version != here.tensorrt_version:
            problems.append(
                f"built with TensorRT {meta.tensorrt_version}, this machine runs "
                f"{here.tensorrt_version}"
            )
        gpu = meta.gpu
        if gpu.compute_capability != here.compute_capability:
            problems.append(
                f"built for compute capability {gpu.compute_capability} ({gpu.name}), "
                f"this GPU is {here.compute_capability} ({here.gpu_name})"
            )
        elif (gpu.name, gpu.multiprocessors) != (here.gpu_name, here.multiprocessors):
            problems.append(
                f"built on GPU {gpu.name!r} with {gpu.multiprocessors} SMs, "
                f"this is {here.gpu_name!r} with {here.multiprocessors} SMs"
            )
    if card is not None:
        if card.onnx_sha256 and card.onnx_sha256 not in meta.onnx.sha256s():
            problems.append(
                f"built from ONNX {meta.onnx.sha256[:12]}, the model card describes "
                f"{card.onnx_sha256[:12]}"
            )
        if meta.card_classes and tuple(card.classes) != meta.card_classes:
            problems.append(f"classes {list(meta.card_classes)} != card {list(card.classes)}")
    return problems


def incompatibility_message(plan_path: str | Path, meta: PlanMetadata, problems: list[str]) -> str:
    """One line: what is wrong with the plan and the exact command that fixes it."""
    return (
        f"{plan_path}: engine cannot run here ({'; '.join(problems)}); rebuild it on this "
        f"device: {meta.rebuild_command()}"
    )
