"""Small charts drawn with OpenCV (no plotting library in the runtime): confusion matrices and
bar/histogram panels that reports and ``gapcam evaluate`` write as PNG."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def confusion_matrix_image(
    matrix: np.ndarray | Sequence[Sequence[int]], classes: Sequence[str], title: str = ""
) -> np.ndarray:
    """Row = true class, column = predicted; cell colour = row-normalised share, text = count."""
    m = np.asarray(matrix, dtype=np.int64)
    n = len(classes)
    cell, left, top = 110, 150, 90 if title else 60
    img = np.full((top + n * cell + 50, left + n * cell + 20, 3), 255, np.uint8)
    rows = m.sum(axis=1, keepdims=True).clip(min=1)
    share = m / rows
    for i in range(n):
        for j in range(n):
            x0, y0 = left + j * cell, top + i * cell
            v = float(share[i, j])
            colour = (255 - int(200 * v), 255 - int(120 * v), 255 - int(30 * v))
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), colour, -1)
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), (120, 120, 120), 1)
            ink = (255, 255, 255) if v > 0.55 else (20, 20, 20)
            cv2.putText(img, str(m[i, j]), (x0 + 12, y0 + 50), _FONT, 0.8, ink, 2, cv2.LINE_AA)
            cv2.putText(img, f"{v:.1%}", (x0 + 12, y0 + 85), _FONT, 0.5, ink, 1, cv2.LINE_AA)
        cv2.putText(
            img, classes[i], (8, top + i * cell + 60), _FONT, 0.6, (0, 0, 0), 1, cv2.LINE_AA
        )
    for j, c in enumerate(classes):
        cv2.putText(img, c, (left + j * cell + 8, top - 12), _FONT, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "true \\ predicted", (8, top - 12), _FONT, 0.45, (90, 90, 90), 1, cv2.LINE_AA)
    if title:
        cv2.putText(img, title, (8, 30), _FONT, 0.7, (0, 0, 0), 2, cv2.LINE_AA)
    acc = np.trace(m) / max(1, m.sum())
    cv2.putText(
        img,
        f"accuracy {acc:.4f}  (n={m.sum()})",
        (8, img.shape[0] - 18),
        _FONT,
        0.6,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    return img
