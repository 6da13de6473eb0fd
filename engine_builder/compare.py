"""How close a candidate (Q/DQ model, TensorRT engine) is to the FP32 reference, on the same images.

The numbers are the ones users care about for a CAM classifier: does the decision change
(top-1 agreement, accuracy where labels exist), how far the logits move, and does the heat map
still point at the same place (Pearson correlation, per image, of the CAM of the class the
reference predicts - the map the overlay shows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from gapcam.backends.base import Backend
from gapcam.model_card import ModelCard

DEFAULT_MIN_AGREEMENT = 0.99
DEFAULT_MIN_CAM_CORRELATION = 0.95


@dataclass(frozen=True)
class Thresholds:
    """Pass/fail limits; ``max_accuracy_drop`` (points) applies only when labels exist."""

    min_agreement: float = DEFAULT_MIN_AGREEMENT
    min_cam_correlation: float = DEFAULT_MIN_CAM_CORRELATION
    max_accuracy_drop: float | None = None


@dataclass
class Comparison:
    images: int
    top1_agreement: float
    max_logit_error: float
    mean_logit_error: float
    cam_correlation_mean: float
    cam_correlation_min: float
    labelled: int = 0
    reference_accuracy: float | None = None
    candidate_accuracy: float | None = None

    @property
    def accuracy_drop_points(self) -> float | None:
        if self.reference_accuracy is None or self.candidate_accuracy is None:
            return None
        return 100.0 * (self.reference_accuracy - self.candidate_accuracy)

    def failures(self, limits: Thresholds) -> list[str]:
        """One short reason per violated threshold (empty: pass)."""
        out = []
        if self.top1_agreement < limits.min_agreement:
            out.append(f"top-1 agreement {self.top1_agreement:.4f} < {limits.min_agreement}")
        if self.cam_correlation_mean < limits.min_cam_correlation:
            out.append(
                f"mean CAM correlation {self.cam_correlation_mean:.4f} < {limits.min_cam_correlation}"
            )
        drop = self.accuracy_drop_points
        if (
            limits.max_accuracy_drop is not None
            and drop is not None
            and drop > limits.max_accuracy_drop
        ):
            out.append(f"accuracy drop {drop:.2f} points > {limits.max_accuracy_drop}")
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["accuracy_drop_points"] = self.accuracy_drop_points
        return d

    def lines(self) -> list[str]:
        rows = [
            f"images                 {self.images}",
            f"top-1 agreement        {self.top1_agreement:.4f}",
            f"logit error max/mean   {self.max_logit_error:.5f} / {self.mean_logit_error:.5f}",
            f"CAM correlation mean   {self.cam_correlation_mean:.4f} (min {self.cam_correlation_min:.4f})",
        ]
        if self.reference_accuracy is not None and self.candidate_accuracy is not None:
            rows.append(
                f"accuracy ref/cand      {100 * self.reference_accuracy:.2f}% / "
                f"{100 * self.candidate_accuracy:.2f}% (drop {self.accuracy_drop_points:.2f} points, "
                f"{self.labelled} labelled)"
            )
        return rows


def pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row pair; two flat rows count as 1, one flat row as 0."""
    a = a.reshape(a.shape[0], -1).astype(np.float64)
    b = b.reshape(b.shape[0], -1).astype(np.float64)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    eps = 1e-12
    corr = np.where((na > eps) & (nb > eps), (a * b).sum(axis=1) / np.maximum(na * nb, eps), 0.0)
    return np.where((na <= eps) & (nb <= eps), 1.0, corr)


def compare_outputs(
    ref_logits: np.ndarray,
    ref_cam: np.ndarray,
    cand_logits: np.ndarray,
    cand_cam: np.ndarray,
    targets: Sequence[int | None] | None = None,
) -> Comparison:
    """All metrics from the raw outputs of both models on the same N images."""
    n = ref_logits.shape[0]
    ref_top = ref_logits.argmax(axis=1)
    cand_top = cand_logits.argmax(axis=1)
    err = np.abs(ref_logits.astype(np.float64) - cand_logits)
    idx = np.arange(n)
    corr = pearson_rows(ref_cam[idx, ref_top], cand_cam[idx, ref_top])
    comp = Comparison(
        images=n,
        top1_agreement=float((ref_top == cand_top).mean()),
        max_logit_error=float(err.max()),
        mean_logit_error=float(err.mean()),
        cam_correlation_mean=float(corr.mean()),
        cam_correlation_min=float(corr.min()),
    )
    if targets is not None:
        labelled = np.array([t is not None for t in targets])
        if labelled.any():
            t = np.array([-1 if x is None else x for x in targets])[labelled]
            comp.labelled = int(labelled.sum())
            comp.reference_accuracy = float((ref_top[labelled] == t).mean())
            comp.candidate_accuracy = float((cand_top[labelled] == t).mean())
    return comp


def label_indices(labels: Sequence[str | None], card: ModelCard) -> list[int | None]:
    """Class folder names -> class indices of the card (unknown names count as unlabelled)."""
    index = {c: i for i, c in enumerate(card.classes)}
    return [index.get(lb) if lb is not None else None for lb in labels]


def compare_backends(
    reference: Backend,
    candidate: Backend,
    batches: Sequence[np.ndarray] | object,
    targets: Sequence[int | None] | None = None,
) -> Comparison:
    """Run both backends on the same preprocessed batches and compare them."""
    ref_l, ref_c, cand_l, cand_c = [], [], [], []
    for batch in batches:  # type: ignore[attr-defined]
        r = reference.infer(batch)
        c = candidate.infer(batch)
        ref_l.append(r.logits)
        ref_c.append(r.cam)
        cand_l.append(c.logits)
        cand_c.append(c.cam)
    return compare_outputs(
        np.concatenate(ref_l),
        np.concatenate(ref_c),
        np.concatenate(cand_l),
        np.concatenate(cand_c),
        targets,
    )
