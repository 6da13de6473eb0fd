"""Images of a model comparison: both models' decisions over time, and disagreeing frames with
the two CAM overlays side by side."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from gapcam.overlay import contact_sheet
from gapcam.replay.plots import class_colour

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK = (30, 30, 30)
_DIFF = (40, 40, 200)


def _text(img: np.ndarray, s: str, org: tuple[int, int], scale: float = 0.45) -> None:
    cv2.putText(img, s, org, _FONT, scale, _INK, 1, cv2.LINE_AA)


def compare_timeline(
    times_s: np.ndarray,
    bands: Sequence[tuple[str, Sequence[str | None]]],
    classes: Sequence[str],
    title: str,
    width: int = 1200,
) -> np.ndarray:
    """One row per band (label, per-frame class name or None), plus rows marking disagreement.

    The two "differs" rows are red where the two models' published (resp. raw) decisions differ;
    they are computed from the bands named ``A published``/``B published`` and ``A raw``/``B raw``.
    """
    named = dict(bands)
    diffs = []
    for what in ("published", "raw"):
        a, b = named.get(f"A {what}"), named.get(f"B {what}")
        if a is not None and b is not None:
            diffs.append((f"differs ({what})", [x != y for x, y in zip(a, b, strict=True)]))
    n = len(times_s)
    left, right, top, band_h, gap = 150, 20, 40, 18, 6
    rows = len(bands) + len(diffs)
    height = top + rows * (band_h + gap) + 50
    img = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(img, title, (10, 26), _FONT, 0.6, _INK, 2, cv2.LINE_AA)
    x0, x1 = left, width - right
    t0 = float(times_s[0]) if n else 0.0
    span = max((float(times_s[-1]) - t0) if n else 1.0, 1e-6)
    px = (x0 + (np.asarray(times_s) - t0) / span * (x1 - x0)).astype(np.int32)

    def segment(i: int) -> tuple[int, int]:
        xa = int(px[i])
        return xa, max(xa, int(px[i + 1]) if i + 1 < n else x1)

    y = top
    for label, values in bands:
        _text(img, label, (8, y + 14))
        cv2.rectangle(img, (x0, y), (x1, y + band_h), (235, 235, 235), -1)
        for i, v in enumerate(values):
            if v is None or v == "":
                continue
            k = classes.index(v) if v in classes else len(classes)
            xa, xb = segment(i)
            cv2.rectangle(img, (xa, y), (xb, y + band_h), class_colour(v, k), -1)
        y += band_h + gap
    for label, flags in diffs:
        _text(img, label, (8, y + 14))
        cv2.rectangle(img, (x0, y), (x1, y + band_h), (235, 235, 235), -1)
        for i, f in enumerate(flags):
            if f:
                xa, xb = segment(i)
                cv2.rectangle(img, (xa, y), (max(xb, xa + 1), y + band_h), _DIFF, -1)
        y += band_h + gap
    for c, name in enumerate(classes):
        lx = x0 + c * 140
        cv2.rectangle(img, (lx, height - 22), (lx + 14, height - 10), class_colour(name, c), -1)
        _text(img, name, (lx + 20, height - 11))
    _text(img, f"{span:.1f} s", (x1 - 60, height - 11), 0.42)
    return img


def disagreement_sheet(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], captions: Sequence[tuple[str, str]]
) -> np.ndarray:
    """Rows of (model A overlay | model B overlay) with a caption under each."""
    tiles = [im for pair in pairs for im in pair]
    caps = [c for pair in captions for c in pair]
    return contact_sheet(tiles, columns=2, tile_width=400, captions=caps)
