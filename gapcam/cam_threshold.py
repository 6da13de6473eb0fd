"""The CAM box threshold of a model, chosen on its validation images at export.

A CAM box keeps the pixels above ``threshold x max`` of the map (:func:`gapcam.cam.cam_box`).
Zhou et al. (CVPR 2016) use 20%, but the best fraction depends on how peaked a network's maps
are: the shipped model's boxes at 20% cover far more than the car. So export sweeps the
threshold over the validation images that carry a ground-truth box (``blocking_box`` of the
synthetic generator), keeps the one whose boxes are most often right (IoU >= 0.5, ties broken by
the mean IoU), and writes it into the model card (``cam_threshold``). Every tool then uses the
card's value unless told otherwise (``--cam-threshold`` / the node's ``cam_threshold``), and a
model without boxes in its data keeps Zhou's 20% (:func:`resolve_cam_threshold`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from gapcam.cam import DEFAULT_CAM_THRESHOLD, box_iou
from gapcam.errors import GapcamError
from gapcam.labels import BLOCKED

if TYPE_CHECKING:
    from gapcam.backends import Backend
    from gapcam.dataset import Sample
    from gapcam.model_card import InputSpec, ModelCard

#: Thresholds tried: 5% steps; below 5% a box is the whole image, above 90% a few pixels.
CANDIDATES: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 19))

#: An IoU at or above this counts as a correct box (the ``cam_iou50`` metric).
IOU_CORRECT = 0.5


def resolve_cam_threshold(card: ModelCard, override: float | None = None) -> float:
    """The threshold to use: ``override`` if given, else the card's, else Zhou's 20%."""
    if override is not None:
        if not 0.0 <= override <= 1.0:
            raise GapcamError(f"cam threshold must lie in 0..1, got {override:g}")
        return float(override)
    chosen = getattr(card, "cam_threshold", None)
    return DEFAULT_CAM_THRESHOLD if chosen is None else float(chosen)


@dataclass(frozen=True)
class BoxedCam:
    """One image's CAM of the localisation class with the ground-truth box of that class."""

    cam: np.ndarray  #: (h, w) map, any scale
    truth: tuple[int, int, int, int]  #: [x0, y0, x1, y1], exclusive ends, image pixels
    size: tuple[int, int]  #: (width, height) of the image
    spec: InputSpec  #: the model's input (boxes are found on its grid, as the pipeline does)


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold and how every candidate scored."""

    threshold: float
    iou50: float  #: share of boxes with IoU >= 0.5 at ``threshold``
    mean_iou: float
    images: int
    scores: dict[float, tuple[float, float]] = field(default_factory=dict)  #: t -> (iou50, mean)

    def to_metrics(self) -> dict[str, float | int]:
        """What the card's ``metrics`` records about the choice."""
        return {
            "cam_threshold_images": self.images,
            "cam_threshold_val_iou50": self.iou50,
            "cam_threshold_val_mean_iou": self.mean_iou,
        }


def box_ious(samples: Sequence[BoxedCam], threshold: float) -> np.ndarray:
    """IoU of each sample's CAM box (at ``threshold``, as the pipeline draws it) with the truth."""
    from gapcam.pipeline import cam_box_in_image

    return np.array(
        [
            box_iou(cam_box_in_image(s.cam, s.spec, s.size, threshold), list(s.truth))
            for s in samples
        ],
        dtype=float,
    )


def choose_cam_threshold(
    samples: Sequence[BoxedCam], candidates: Sequence[float] = CANDIDATES
) -> ThresholdChoice:
    """The candidate whose boxes most often reach IoU 0.5 with the truth (then: highest mean IoU).

    Raises :class:`GapcamError` without samples: with no boxes there is nothing to choose on,
    and the caller should keep the default (a card without ``cam_threshold``).
    """
    if not samples:
        raise GapcamError("no validation images with a ground-truth box to choose a threshold on")
    if not candidates:
        raise GapcamError("no candidate thresholds")
    scores: dict[float, tuple[float, float]] = {}
    for t in candidates:
        ious = box_ious(samples, t)
        scores[float(t)] = (float(np.mean(ious >= IOU_CORRECT)), float(np.mean(ious)))
    best = max(scores, key=lambda t: (scores[t], -t))
    return ThresholdChoice(best, *scores[best], images=len(samples), scores=scores)


def boxed_cams(
    backend: Backend, samples: Sequence[Sample], *, progress: bool = True
) -> list[BoxedCam]:
    """Run the model once over the ``blocked`` samples with a box; keep their ``blocked`` CAMs.

    The class's own map is used whatever the prediction ("ground-truth-known" localisation, as
    :mod:`gapcam.evaluate` scores it), so a misclassified image still tells where the map points.
    """
    from gapcam.imageio import read_image
    from gapcam.pipeline import Pipeline

    if BLOCKED not in backend.card.classes:
        return []
    pipe = Pipeline(backend, cam_class=BLOCKED)
    boxed = [s for s in samples if s.label == BLOCKED and s.meta.get("blocking_box")]
    out = []
    for s in tqdm(boxed, desc="cam threshold", disable=not progress, unit="img"):
        image = read_image(s.path)
        h, w = image.shape[:2]
        cam = pipe.analyze(image).cam
        out.append(BoxedCam(cam, tuple(s.meta["blocking_box"]), (w, h), backend.card.input))
    return out


def write_cam_threshold(
    model: str | Path, samples: Sequence[Sample], *, progress: bool = True
) -> ModelCard | None:
    """Choose ``model``'s threshold on ``samples`` and record it in its card (the ONNX file, and
    so its hash, is untouched). Returns the new card, or ``None`` when no sample has a box
    (the card is then left as it is)."""
    import dataclasses

    from gapcam.backends import load_backend
    from gapcam.model_card import card_path_for

    backend = load_backend(model, "onnxruntime")
    try:
        boxed = boxed_cams(backend, samples, progress=progress)
    finally:
        backend.close()
    if not boxed:
        return None
    choice = choose_cam_threshold(boxed)
    card = dataclasses.replace(
        backend.card,
        cam_threshold=choice.threshold,
        metrics={**backend.card.metrics, **choice.to_metrics()},
    )
    card.save(card_path_for(model))
    return card


def threshold_arg(text: str) -> float:
    """``--cam-threshold`` value: a fraction in 0..1 (argparse prints the one-line error)."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in 0..1 (a fraction of the maximum): {text}")
    return value
