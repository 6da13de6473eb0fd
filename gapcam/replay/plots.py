"""Report charts drawn with OpenCV and numpy (matplotlib is not a runtime dependency).

The timeline shows, per camera, what a reviewer needs to judge a replay at a glance: the
smoothed decision, the raw per-frame decision and (when the bag has it) the ground truth as
coloured bands over the class probabilities, raw (thin) and smoothed (thick).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from gapcam.overlay import DECISION_COLOURS

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_GREY = (200, 200, 200)
_INK = (30, 30, 30)
_FALLBACK_COLOURS = [(180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148)]


def class_colour(name: str, index: int) -> tuple[int, int, int]:
    return DECISION_COLOURS.get(name, _FALLBACK_COLOURS[index % len(_FALLBACK_COLOURS)])


def _text(img: np.ndarray, s: str, org: tuple[int, int], scale: float = 0.45, ink=_INK) -> None:
    cv2.putText(img, s, org, _FONT, scale, ink, 1, cv2.LINE_AA)


def _nice_step(span: float, target: int) -> float:
    raw = max(span, 1e-9) / max(1, target)
    mag = 10 ** np.floor(np.log10(raw))
    return float(min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=10 * mag))


def timeline_image(
    times_s: np.ndarray,
    probabilities: np.ndarray,
    smoothed: np.ndarray,
    decisions: np.ndarray,
    raw_decisions: np.ndarray,
    classes: Sequence[str],
    truth: np.ndarray | None = None,
    title: str = "",
    width: int = 1200,
) -> np.ndarray:
    """Decision bands + class-probability curves over time for one camera.

    ``probabilities``/``smoothed`` are (N, C); ``decisions``/``raw_decisions``/``truth`` are (N,)
    class indices (``truth`` uses -1 for unlabelled frames).
    """
    n = len(times_s)
    left, right, top = 135, 20, 40
    band_h, gap, plot_h = 18, 6, 220
    bands = [("decision", decisions), ("raw", raw_decisions)]
    if truth is not None:
        bands.append(("truth", truth))
    plot_top = top + len(bands) * (band_h + gap) + 6
    height = plot_top + plot_h + 60
    img = np.full((height, width, 3), 255, np.uint8)
    if title:
        cv2.putText(img, title, (10, 26), _FONT, 0.65, _INK, 2, cv2.LINE_AA)
    x0, x1 = left, width - right
    t_min = float(times_s[0]) if n else 0.0
    t_max = float(times_s[-1]) if n else 1.0
    span = max(t_max - t_min, 1e-6)

    def xs(t: np.ndarray) -> np.ndarray:
        return (x0 + (np.asarray(t) - t_min) / span * (x1 - x0)).astype(np.int32)

    px = xs(times_s) if n else np.zeros(0, np.int32)
    # bands: one coloured segment per frame, from its x to the next frame's x
    for b, (name, idx) in enumerate(bands):
        y = top + b * (band_h + gap)
        _text(img, name, (8, y + 14))
        cv2.rectangle(img, (x0, y), (x1, y + band_h), (235, 235, 235), -1)
        for i in range(n):
            k = int(idx[i])
            if k < 0:
                continue
            xa = int(px[i])
            xb = int(px[i + 1]) if i + 1 < n else x1
            cv2.rectangle(img, (xa, y), (max(xa, xb), y + band_h), class_colour(classes[k], k), -1)
    # probability plot
    y0, y1 = plot_top, plot_top + plot_h
    cv2.rectangle(img, (x0, y0), (x1, y1), (250, 250, 250), -1)
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = int(y1 - v * plot_h)
        cv2.line(img, (x0, y), (x1, y), (225, 225, 225), 1)
        _text(img, f"{v:.2f}", (x0 - 44, y + 4), 0.4)
    _text(img, "probability", (8, y0 + plot_h // 2))
    for c, name in enumerate(classes):
        colour = class_colour(name, c)
        if n:
            for arr, thick in ((probabilities, 1), (smoothed, 2)):
                py = (y1 - np.clip(arr[:, c], 0, 1) * plot_h).astype(np.int32)
                pts = np.stack([px, py], axis=1).reshape(-1, 1, 2)
                cv2.polylines(img, [pts], False, colour, thick, cv2.LINE_AA)
        lx = x0 + 10 + c * 140
        cv2.rectangle(img, (lx, height - 22), (lx + 14, height - 10), colour, -1)
        _text(img, name, (lx + 20, height - 11))
    _text(img, "thin: per frame, thick: smoothed", (x0 + 10 + len(classes) * 140, height - 11), 0.4)
    # time axis
    step = _nice_step(span, 10)
    t = np.ceil(t_min / step) * step
    while t <= t_max + 1e-9:
        x = int(xs(np.array([t]))[0])
        cv2.line(img, (x, y1), (x, y1 + 5), _INK, 1)
        _text(img, f"{t:g}", (x - 10, y1 + 20), 0.4)
        t += step
    _text(img, "time [s]", (x1 - 60, y1 + 38), 0.42)
    return img


def histogram_image(
    values: Sequence[float] | np.ndarray,
    title: str,
    xlabel: str,
    bins: int = 40,
    width: int = 800,
    height: int = 320,
) -> np.ndarray:
    """Histogram with mean, median and 95th percentile marked (e.g. per-frame latency)."""
    v = np.asarray(values, dtype=np.float64)
    img = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(img, title, (10, 24), _FONT, 0.6, _INK, 2, cv2.LINE_AA)
    if v.size == 0:
        _text(img, "no data", (width // 2 - 30, height // 2))
        return img
    left, right, top, bottom = 60, 20, 40, 50
    lo, hi = float(v.min()), float(v.max())
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    x0, x1, y0, y1 = left, width - right, top, height - bottom
    peak = max(1, int(counts.max()))
    bw = (x1 - x0) / bins
    for i, c in enumerate(counts):
        xa = int(x0 + i * bw)
        xb = int(x0 + (i + 1) * bw) - 1
        ya = int(y1 - c / peak * (y1 - y0))
        cv2.rectangle(img, (xa, ya), (max(xa, xb), y1), (180, 130, 70), -1)
    cv2.line(img, (x0, y1), (x1, y1), _INK, 1)
    cv2.line(img, (x0, y0), (x0, y1), _INK, 1)
    _text(img, str(peak), (8, y0 + 10), 0.4)
    _text(img, "0", (40, y1), 0.4)

    def xv(val: float) -> int:
        return int(x0 + (val - lo) / (hi - lo) * (x1 - x0))

    step = _nice_step(hi - lo, 8)
    t = np.ceil(lo / step) * step
    while t <= hi + 1e-9:
        cv2.line(img, (xv(t), y1), (xv(t), y1 + 4), _INK, 1)
        _text(img, f"{t:g}", (xv(t) - 10, y1 + 18), 0.4)
        t += step
    marks = [
        ("mean", float(v.mean()), (40, 40, 200)),
        ("p50", float(np.percentile(v, 50)), (40, 150, 40)),
        ("p95", float(np.percentile(v, 95)), (160, 40, 160)),
    ]
    for i, (name, val, colour) in enumerate(marks):
        cv2.line(img, (xv(val), y0), (xv(val), y1), colour, 1, cv2.LINE_AA)
        _text(img, f"{name} {val:.2f}", (x1 - 150, y0 + 16 + 18 * i), 0.45, colour)
    _text(img, f"{xlabel}  (n={v.size})", (x0, height - 10), 0.45)
    return img
