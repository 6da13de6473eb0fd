"""Rendering what the network looked at: CAM heat map blended on the camera image, the CAM box,
the decision and the class probabilities.

Text and line sizes scale with the image height so the overlay stays legible from 640x480 up to
1920x1080 (what an engineer sees in rviz in the vehicle).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from gapcam.cam import upsample

#: BGR colour per decision label; unknown labels are drawn in white.
DECISION_COLOURS: dict[str, tuple[int, int, int]] = {
    "blocked": (40, 40, 230),
    "free": (60, 200, 60),
    "undefined": (0, 200, 230),
}
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def heatmap(cam01: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``[0, 1]`` map -> BGR ``uint8`` JET heat map of ``size`` = (width, height)."""
    up = upsample(cam01, size)
    return cv2.applyColorMap(np.clip(up * 255.0, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)


def cam_mono8(cam01: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``[0, 1]`` map -> ``uint8`` single-channel map of ``size`` (the node's ``~/cam`` topic)."""
    return np.clip(upsample(cam01, size) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def render_overlay(
    image: np.ndarray,
    cam01: np.ndarray,
    *,
    decision: str,
    probabilities: Mapping[str, float],
    box: Sequence[int] | None = None,
    alpha: float = 0.45,
    caption: str | None = None,
) -> np.ndarray:
    """Blend the heat map on ``image`` (BGR ``uint8``) and draw box, decision and probabilities.

    ``box`` is in ``image`` pixels; ``caption`` is an optional small line (e.g. model id, latency).
    Returns a new BGR ``uint8`` image of the same size.
    """
    h, w = image.shape[:2]
    out = cv2.addWeighted(image, 1.0 - alpha, heatmap(cam01, (w, h)), alpha, 0.0)
    # Scales with the image height (legible at 640x480 and at 1920x1080); floor for thumbnails.
    unit = max(0.5, h / 480.0)
    colour = DECISION_COLOURS.get(decision, (255, 255, 255))
    thick = max(2, int(round(2 * unit)))
    if box is not None:
        x0, y0, x1, y1 = (int(v) for v in box)
        cv2.rectangle(out, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), colour, thick, cv2.LINE_AA)
    _draw_panel(out, decision, probabilities, colour, unit, caption)
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
    roi[:] = (roi.astype(np.float32) * 0.35).astype(np.uint8)
    y = pad + th
    cv2.putText(out, title, (pad, y), _FONT, scale_big, colour, t_big, cv2.LINE_AA)
    for name, p in probabilities.items():
        y += line
        cv2.putText(out, name, (pad, y), _FONT, scale_small, (235, 235, 235), t_small, cv2.LINE_AA)
        bx = pad + label_w + int(8 * unit)
        by0, by1 = y - int(12 * unit), y
        cv2.rectangle(out, (bx, by0), (bx + bar_w, by1), (90, 90, 90), -1)
        fill = DECISION_COLOURS.get(name, (200, 200, 200))
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
