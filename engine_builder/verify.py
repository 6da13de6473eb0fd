"""Check an engine (or a quantised ONNX) against the FP32 ONNX on ONNX Runtime, on the same images.

The reference is always the FP32 model the candidate came from: for an engine it is found
through its ``.plan.json`` (the source ONNX, or for Q/DQ models the FP32 model named in the
Q/DQ model card), and its sha256 must match what the metadata recorded.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine_builder.calibration_set import (
    DEFAULT_VALIDATION_SET,
    ImageSet,
    load_image_set,
    set_is_complete,
)
from engine_builder.compare import Comparison, Thresholds, compare_backends, label_indices
from engine_builder.errors import EngineBuilderError
from gapcam.backends.base import Backend
from gapcam.backends.onnxruntime_backend import OnnxRuntimeBackend
from gapcam.backends.plan_metadata import PlanMetadata, load_plan_metadata
from gapcam.model_card import ModelCard, load_card_for_onnx, sha256_file

#: Images used by default (a spread subset of the validation set keeps verify under a minute).
DEFAULT_VERIFY_IMAGES = 256


@dataclass
class VerifyResult:
    comparison: Comparison
    failures: list[str]
    data: dict[str, Any]
    reference: str

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self, thresholds: Thresholds, forced: bool = False) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "forced": forced,
            "failures": self.failures,
            "thresholds": thresholds.__dict__,
            "reference": self.reference,
            "data": self.data,
            "comparison": self.comparison.to_dict(),
        }


def fp32_reference_of_onnx(onnx_path: Path, card: ModelCard) -> tuple[Path, str]:
    """The FP32 model a (possibly Q/DQ) ONNX came from, checked by sha256."""
    quant = (card.provenance or {}).get("quantization")
    if not quant:
        return onnx_path, card.onnx_sha256 or sha256_file(onnx_path)
    ref = (onnx_path.parent / quant["fp32_onnx"]).resolve()
    want = quant.get("fp32_onnx_sha256", "")
    if not ref.is_file():
        raise EngineBuilderError(
            f"{onnx_path}: its FP32 reference {ref} is missing; keep the FP32 model beside "
            "the Q/DQ model (or pass --onnx FP32.onnx)"
        )
    return ref, want


def reference_for_plan(meta: PlanMetadata, plan_dir: Path, override: Path | None) -> Path:
    """The FP32 ONNX to verify a plan against (``override`` must have the recorded sha256).

    Paths in the metadata are relative to the plan's directory (engines move with their models).
    """
    ref_path, ref_sha = meta.onnx.reference()
    path = Path(override) if override else plan_dir / ref_path
    if not path.is_file():
        raise EngineBuilderError(
            f"FP32 reference model {path} not found; pass it with --onnx FP32.onnx"
        )
    if ref_sha and sha256_file(path) != ref_sha:
        raise EngineBuilderError(
            f"{path}: sha256 differs from the FP32 model the engine was built from "
            f"({ref_sha[:12]}); pass the right one with --onnx"
        )
    return path


#: Seed of the synthetic scenes used when the default validation set has not been generated.
FALLBACK_SEED = 990_000
FALLBACK_IMAGES = 64


@contextlib.contextmanager
def default_data(spec, limit: int | None) -> Iterator[ImageSet]:
    """The default validation set, or (not generated, e.g. in a container) a few synthetic scenes.

    The fallback keeps ``ensure`` self-contained: an engine is never published unverified just
    because the git-ignored validation images are absent.
    """
    if set_is_complete(DEFAULT_VALIDATION_SET):
        yield load_image_set(DEFAULT_VALIDATION_SET, spec).subset(limit)
        return
    import cv2

    from gapcam.synth import render_scene

    with tempfile.TemporaryDirectory(prefix="engine-builder-verify-") as tmp:
        for i in range(min(limit or FALLBACK_IMAGES, FALLBACK_IMAGES)):
            image, meta = render_scene(FALLBACK_SEED + i, size=(224, 224))
            label = meta.get("label") if isinstance(meta, dict) else None
            folder = Path(tmp) / (label or "unlabelled")
            folder.mkdir(exist_ok=True)
            cv2.imwrite(str(folder / f"{i:04d}.png"), image)
        yield load_image_set(tmp, spec)


def run_verify(
    reference: Backend,
    candidate: Backend,
    data: ImageSet,
    thresholds: Thresholds,
    *,
    reference_name: str,
    batch_size: int = 4,
) -> VerifyResult:
    card = reference.card
    comparison = compare_backends(
        reference,
        candidate,
        data.batches(card.input, batch_size),
        label_indices(data.labels, card),
    )
    return VerifyResult(
        comparison, comparison.failures(thresholds), data.describe(), reference_name
    )


def verify_onnx(
    candidate_path: Path,
    data: ImageSet | None,
    thresholds: Thresholds,
    *,
    onnx_override: Path | None = None,
    limit: int | None = DEFAULT_VERIFY_IMAGES,
) -> VerifyResult:
    """A (Q/DQ) ONNX model on ORT basic optimisation vs its FP32 reference (no GPU needed)."""
    card = load_card_for_onnx(candidate_path)
    if onnx_override:
        ref_path = Path(onnx_override)
    else:
        ref_path, _ = fp32_reference_of_onnx(candidate_path, card)
    reference = OnnxRuntimeBackend(ref_path)
    candidate = OnnxRuntimeBackend(candidate_path, card, optimization="basic")
    with contextlib.ExitStack() as stack:
        if data is None:
            data = stack.enter_context(default_data(card.input, limit))
        return run_verify(reference, candidate, data, thresholds, reference_name=str(ref_path))


def verify_plan(
    plan_path: Path,
    data: ImageSet | None,
    thresholds: Thresholds,
    *,
    metadata: PlanMetadata | None = None,
    onnx_override: Path | None = None,
    limit: int | None = DEFAULT_VERIFY_IMAGES,
    device: int = 0,
    say: Callable[[str], None] = print,
) -> VerifyResult:
    """A TensorRT plan vs its FP32 ONNX (needs TensorRT and the GPU the plan was built for)."""
    from gapcam.backends.tensorrt_backend import TensorRTBackend

    meta = metadata or load_plan_metadata(plan_path)
    ref_path = reference_for_plan(meta, plan_path.parent, onnx_override)
    reference = OnnxRuntimeBackend(ref_path)
    with contextlib.ExitStack() as stack:
        if data is None:
            data = stack.enter_context(default_data(reference.card.input, limit))
        candidate = TensorRTBackend(plan_path, metadata=meta, device=device)
        stack.callback(candidate.close)
        say(f"verifying {plan_path.name} against {ref_path.name} on {len(data.entries)} images")
        return run_verify(reference, candidate, data, thresholds, reference_name=str(ref_path))
