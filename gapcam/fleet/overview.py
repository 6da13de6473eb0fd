"""``fleet_overview.png``: one line per bag, worst first - status, accuracy and decision flicker.

The table in ``fleet_report.md`` has the numbers; this image is for spotting the outliers among
hundreds of bags at a glance (a short red bar, a long orange bar) before opening their reports.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from gapcam.fleet.task import FAILED

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK = (30, 30, 30)
_STATUS = {"ok": (60, 170, 60), "interrupted": (0, 170, 230)}
_FAILED = (40, 40, 210)
_ACC = (180, 119, 31)
_FLICKER = (14, 127, 255)


def overview_image(rows: list[dict[str, Any]], max_rows: int = 200) -> np.ndarray:
    """Rows as ordered by the report (worst first); at most ``max_rows`` are drawn."""
    shown = rows[:max_rows]
    name_w, bar_w, row_h, top = 260, 300, 20, 56
    width = name_w + 2 * (bar_w + 40) + 40
    height = top + row_h * max(1, len(shown)) + 30
    img = np.full((height, width, 3), 255, np.uint8)
    x_acc = name_w + 30
    x_cpm = x_acc + bar_w + 40
    cpm_max = max((r.get("changes_per_min") or 0.0 for r in shown), default=0.0) or 1.0
    cv2.putText(img, "fleet overview (worst first)", (10, 22), _FONT, 0.6, _INK, 2, cv2.LINE_AA)
    for x, label in ((x_acc, "accuracy (0..1)"), (x_cpm, f"changes/min (0..{cpm_max:.0f})")):
        cv2.putText(img, label, (x, 46), _FONT, 0.45, _INK, 1, cv2.LINE_AA)
    for i, r in enumerate(shown):
        y = top + i * row_h
        colour = _FAILED if r["status"] in FAILED else _STATUS.get(r["status"], (150, 150, 150))
        cv2.rectangle(img, (8, y + 4), (20, y + row_h - 4), colour, -1)
        cv2.putText(img, r["name"][:30], (26, y + 14), _FONT, 0.42, _INK, 1, cv2.LINE_AA)
        for x, value, scale, c in (
            (x_acc, r.get("accuracy"), 1.0, _ACC),
            (x_cpm, r.get("changes_per_min"), cpm_max, _FLICKER),
        ):
            cv2.rectangle(img, (x, y + 4), (x + bar_w, y + row_h - 4), (238, 238, 238), -1)
            if value is None:
                text = r["status"] if r["status"] != "ok" else "-"
                cv2.putText(img, text, (x + 4, y + 14), _FONT, 0.38, _INK, 1, cv2.LINE_AA)
                continue
            w = int(round(bar_w * min(1.0, value / scale)))
            cv2.rectangle(img, (x, y + 4), (x + w, y + row_h - 4), c, -1)
            cv2.putText(
                img, f"{value:.3g}", (x + bar_w + 4, y + 14), _FONT, 0.38, _INK, 1, cv2.LINE_AA
            )
    if len(rows) > len(shown):
        note = f"... {len(rows) - len(shown)} more bags in fleet_report.md"
        cv2.putText(img, note, (10, height - 10), _FONT, 0.42, _INK, 1, cv2.LINE_AA)
    return img
