"""Diverse frames without near-duplicates: the one selection used for INT8 calibration sets
(``engine-builder``, ``calibration/select_from_bags.py``) and for labelling (``gapcam frames``).

At 15-30 Hz consecutive camera frames are nearly identical; labelling or calibrating on all of
them wastes effort on one moment of one drive. Each frame is described by a tiny appearance
vector (8x8 Lab thumbnail + HSV histograms); near-duplicates are dropped in time order and
farthest-point sampling picks frames spread over conditions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gapcam.errors import GapcamError
from gapcam.imageio import read_image

#: Thumbnail side and histogram bins of the selection features.
THUMB = 8
HIST_BINS = 16
#: Features closer than this (RMS over the feature vector) count as near-duplicates.
DEDUP_THRESHOLD = 0.02


def frame_features(image: np.ndarray) -> np.ndarray:
    """Small descriptor of one BGR frame: 8x8 Lab thumbnail + H/S/V histograms, in [0, 1]."""
    small = cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA)
    thumb = cv2.resize(small, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(thumb, cv2.COLOR_BGR2LAB).astype(np.float32).ravel() / 255.0
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    hists = []
    for channel, top in ((0, 180), (1, 256), (2, 256)):
        h = cv2.calcHist([hsv], [channel], None, [HIST_BINS], [0, top]).ravel()
        hists.append(h / max(1.0, h.sum()))
    # Histograms sum to 1 per channel; scale them to weigh about as much as the thumbnail.
    hist = np.concatenate(hists) * np.sqrt(lab.size / (3 * HIST_BINS))
    return np.concatenate([lab, hist.astype(np.float32)])


@dataclass
class Selection:
    """Result of :func:`select_diverse`: chosen indices (in pick order) and dropped duplicates."""

    indices: list[int]
    duplicates: list[int]
    candidates: int
    method: dict[str, Any] = field(default_factory=dict)


def select_diverse(
    frames: Sequence[np.ndarray | str | Path],
    count: int,
    *,
    dedup_threshold: float = DEDUP_THRESHOLD,
) -> Selection:
    """Pick ``count`` frames spread over appearance; deterministic for the same frames.

    Near-duplicates (feature distance below ``dedup_threshold``) are removed in input order
    (the first of a run survives), then greedy farthest-point sampling starts from the frame
    nearest the mean and repeatedly takes the frame farthest from all picked ones.
    """
    if count <= 0:
        raise GapcamError("selection count must be positive")
    feats = np.stack(
        [frame_features(read_image(f) if isinstance(f, str | Path) else f) for f in frames]
    ).astype(np.float64)
    n, dim = feats.shape
    scale = np.sqrt(dim)
    kept: list[int] = []
    duplicates: list[int] = []
    for i in range(n):  # O(n * kept): fine for thousands of frames
        if kept:
            d = np.linalg.norm(feats[kept] - feats[i], axis=1) / scale
            if d.min() < dedup_threshold:
                duplicates.append(i)
                continue
        kept.append(i)
    pool = feats[kept]
    first = int(np.argmin(np.linalg.norm(pool - pool.mean(axis=0), axis=1)))
    picked = [first]
    dist = np.linalg.norm(pool - pool[first], axis=1)
    while len(picked) < min(count, len(kept)):
        nxt = int(np.argmax(dist))
        picked.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(pool - pool[nxt], axis=1))
    return Selection(
        indices=[kept[i] for i in picked],
        duplicates=duplicates,
        candidates=n,
        method={
            "method": "farthest-point",
            "features": f"Lab {THUMB}x{THUMB} thumbnail + HSV histograms ({HIST_BINS} bins)",
            "dedup_threshold": dedup_threshold,
            "candidates": n,
            "near_duplicates_removed": len(duplicates),
            "selected": len(picked),
        },
    )
