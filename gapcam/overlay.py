"""Rendering what the network looked at: CAM heat map blended on the camera image, the CAM box,
the decision and the class probabilities.

Text and line sizes scale with the image height so the overlay stays legible from 640x480 up to
1920x1080 (what an engineer sees in rviz in the vehicle).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from gapcam.node_settings import DEFAULT_OVERLAY

#: BGR colours of the reference lane-change classes; any other class gets :func:`class_colour`.
DECISION_COLOURS: dict[str, tuple[int, int, int]] = {
    "blocked": (40, 40, 230),
    "free": (60, 200, 60),
    "undefined": (0, 200, 230),
}
#: With more classes than this, the panel lists only the most probable ones.
MAX_PANEL_CLASSES = 6
_FONT = cv2.FONT_HERSHEY_SIMPLEX


class OverlayBuffers:
    """Reusable images for :func:`render_overlay`, one set per output size.

    A node draws an overlay of the same size for every frame; allocating (and page-faulting)
    fresh megabytes each time costs about as much as the drawing. With buffers, the returned
    overlay is one of them and stays valid only until the next call with the same buffers, so
    a caller keeps them only where it uses (publishes, encodes, copies) each overlay at once.
    """

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        key = (name, shape)
        arr = self._arrays.get(key)
        if arr is None:
            if len(self._arrays) > 16:  # the size changed many times: forget old sizes
                self._arrays.clear()
            arr = self._arrays[key] = np.empty(shape, np.uint8)
        return arr


def class_colour(name: str) -> tuple[int, int, int]:
    """A bright BGR colour for any class name: fixed for the lane-change classes, otherwise a hue
    derived from the name (stable across runs, models and class orders)."""
    if name in DECISION_COLOURS:
        return DECISION_COLOURS[name]
    hue = zlib.crc32(name.encode("utf-8")) % 180
    hsv = np.array([[[hue, 200, 235]]], np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def panel_entries(probabilities: Mapping[str, float]) -> dict[str, float]:
    """The probabilities shown on the overlay: all of a small class set, else the top ones."""
    if len(probabilities) <= MAX_PANEL_CLASSES:
        return dict(probabilities)
    top = sorted(probabilities.items(), key=lambda kv: -float(kv[1]))[: MAX_PANEL_CLASSES - 1]
    return dict(top)


def _new(name: str, shape: tuple[int, ...], buffers: OverlayBuffers | None) -> np.ndarray:
    return np.empty(shape, np.uint8) if buffers is None else buffers.get(name, shape)


def cam_to_u8(cam01: np.ndarray) -> np.ndarray:
    """``[0, 1]`` map (network resolution) -> ``uint8`` map of the same size."""
    return np.clip(np.asarray(cam01, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def cam_mono8(
    cam01: np.ndarray, size: tuple[int, int], out: np.ndarray | None = None
) -> np.ndarray:
    """``[0, 1]`` map -> ``uint8`` single-channel map of ``size`` (the node's ``~/cam`` topic).

    Quantised at the map's own resolution, then bilinearly upsampled in 8 bits: no float image
    at the output size.
    """
    w, h = size
    if out is None:
        out = np.empty((h, w), np.uint8)
    return cv2.resize(cam_to_u8(cam01), (w, h), dst=out, interpolation=cv2.INTER_LINEAR)


def heatmap(
    cam01: np.ndarray, size: tuple[int, int], buffers: OverlayBuffers | None = None
) -> np.ndarray:
    """``[0, 1]`` map -> BGR ``uint8`` JET heat map of ``size`` = (width, height).

    One colour-map lookup per output pixel on the 8-bit upsampled map (:func:`cam_mono8`).
    """
    w, h = size
    mono = cam_mono8(cam01, size, _new("heat_mono", (h, w), buffers))
    return cv2.applyColorMap(mono, cv2.COLORMAP_JET, dst=_new("heat", (h, w, 3), buffers))


def render_overlay(
    image: np.ndarray,
    cam01: np.ndarray,
    *,
    decision: str,
    probabilities: Mapping[str, float],
    box: Sequence[int] | None = None,
    alpha: float = DEFAULT_OVERLAY.alpha,
    caption: str | None = None,
    size: tuple[int, int] | None = None,
    order: str = "BGR",
    box_space: tuple[int, int] | None = None,
    buffers: OverlayBuffers | None = None,
) -> np.ndarray:
    """Blend the heat map on ``image`` and draw box, decision and probabilities.

    ``image`` is ``uint8`` ``(H, W, 3)`` in ``order`` (``"BGR"`` or ``"RGB"``, e.g. a view of a
    camera message; it is never written). The overlay is drawn at ``size`` = (width, height)
    (default: the image's): the image is area-resized into it first, then colours are swapped,
    the map is colour-mapped and blended at that size only. ``box`` is in pixels of an image of
    ``box_space`` = (width, height) (default: ``image``'s size);
    ``caption`` is an optional small line (e.g. model id, latency). Returns a BGR ``uint8`` image
    of ``size``: a new one, or one of ``buffers`` (see :class:`OverlayBuffers`).
    """
    ih, iw = image.shape[:2]
    w, h = size or (iw, ih)
    if (w, h) != (iw, ih):
        base = cv2.resize(
            image, (w, h), dst=_new("base", (h, w, 3), buffers), interpolation=cv2.INTER_AREA
        )
        if order == "RGB":
            cv2.cvtColor(base, cv2.COLOR_RGB2BGR, dst=base)
    elif order == "RGB":
        base = cv2.cvtColor(image, cv2.COLOR_RGB2BGR, dst=_new("base", (h, w, 3), buffers))
    else:
        base = image
    heat = heatmap(cam01, (w, h), buffers)
    out = cv2.addWeighted(base, 1.0 - alpha, heat, alpha, 0.0, dst=_new("out", (h, w, 3), buffers))
    # Scales with the image height (legible at 640x480 and at 1920x1080); floor for thumbnails.
    unit = max(0.5, h / 480.0)
    colour = class_colour(decision)
    thick = max(2, int(round(2 * unit)))
    if box is not None:
        bw, bh = box_space or (iw, ih)
        sx, sy = w / bw, h / bh
        x0, y0, x1, y1 = (int(round(v * s)) for v, s in zip(box, (sx, sy, sx, sy), strict=True))
        cv2.rectangle(out, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), colour, thick, cv2.LINE_AA)
    _draw_panel(out, decision, panel_entries(probabilities), colour, unit, caption)
    return out


def _draw_panel(
    out: np.ndarray,
    decision: str,
    probabilities: Mapping[str, float],
    colour: tuple[int, int, int],
    unit: float,
    caption: str | None,
) -> None:
    """Decision title and one probability bar per class in a dark box at the top left."""
    scale_big, scale_small = 0.9 * unit, 0.55 * unit
    t_big, t_small = max(2, int(round(2 * unit))), max(1, int(round(1.3 * unit)))
    pad = int(8 * unit)
    line = int(24 * unit)
    bar_w = int(110 * unit)
    label_w = (
        max(cv2.getTextSize(n, _FONT, scale_small, t_small)[0][0] for n in probabilities)
        if probabilities
        else 0
    )
    title = decision.upper()
    (tw, th), _ = cv2.getTextSize(title, _FONT, scale_big, t_big)
    width = max(tw, label_w + bar_w + int(60 * unit)) + 2 * pad
    height = pad * 2 + th + line * len(probabilities) + (line if caption else 0) + pad
    width = min(width, out.shape[1])
    height = min(height, out.shape[0])
    roi = out[:height, :width]
    roi[:] = cv2.convertScaleAbs(roi, alpha=0.35)  # darken, in 8 bits
    y = pad + th
    cv2.putText(out, title, (pad, y), _FONT, scale_big, colour, t_big, cv2.LINE_AA)
    for name, p in probabilities.items():
        y += line
        cv2.putText(out, name, (pad, y), _FONT, scale_small, (235, 235, 235), t_small, cv2.LINE_AA)
        bx = pad + label_w + int(8 * unit)
        by0, by1 = y - int(12 * unit), y
        cv2.rectangle(out, (bx, by0), (bx + bar_w, by1), (90, 90, 90), -1)
        fill = class_colour(name)
        cv2.rectangle(out, (bx, by0), (bx + int(bar_w * float(p)), by1), fill, -1)
        cv2.putText(
            out,
            f"{p:.2f}",
            (bx + bar_w + int(6 * unit), y),
            _FONT,
            scale_small,
            (235, 235, 235),
            t_small,
            cv2.LINE_AA,
        )
    if caption:
        y += line
        cv2.putText(
            out, caption, (pad, y), _FONT, scale_small * 0.85, (200, 200, 200), t_small, cv2.LINE_AA
        )


def contact_sheet(
    images: Sequence[np.ndarray],
    columns: int = 6,
    tile_width: int = 320,
    captions: Sequence[str] | None = None,
) -> np.ndarray:
    """Tile images (resized to a common width) into one BGR sheet, with optional captions."""
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    tiles = []
    for i, im in enumerate(images):
        h, w = im.shape[:2]
        th = max(1, int(round(h * tile_width / w)))
        tile = cv2.resize(im, (tile_width, th), interpolation=cv2.INTER_AREA)
        if captions:
            cv2.rectangle(tile, (0, th - 18), (tile_width, th), (0, 0, 0), -1)
            cv2.putText(
                tile, captions[i][:48], (4, th - 5), _FONT, 0.42, (255, 255, 255), 1, cv2.LINE_AA
            )
        tiles.append(tile)
    tile_h = max(t.shape[0] for t in tiles)
    rows = []
    for r in range(0, len(tiles), columns):
        row = [
            np.pad(t, ((0, tile_h - t.shape[0]), (0, 0), (0, 0))) for t in tiles[r : r + columns]
        ]
        row += [np.zeros((tile_h, tile_width, 3), np.uint8)] * (columns - len(row))
        rows.append(np.hstack(row))
    return np.vstack(rows)
