"""Overlay rendering: shape, type, and that it actually draws what it claims."""

from __future__ import annotations

import numpy as np
import pytest

from gapcam.overlay import DECISION_COLOURS, cam_mono8, contact_sheet, render_overlay

PROBS = {"blocked": 0.7, "free": 0.2, "undefined": 0.1}


def _cam() -> np.ndarray:
    m = np.zeros((16, 16), np.float32)
    m[8:12, 4:8] = 1.0
    return m


@pytest.mark.parametrize("size", [(640, 480), (1920, 1080), (224, 224)])
def test_overlay_keeps_size_and_type(size):
    w, h = size
    img = np.full((h, w, 3), 128, np.uint8)
    out = render_overlay(
        img, _cam(), decision="blocked", probabilities=PROBS, box=[10, 20, 100, 120]
    )
    assert out.shape == img.shape and out.dtype == np.uint8
    assert not np.array_equal(out, img)


def test_box_is_drawn_in_the_decision_colour():
    img = np.full((480, 640, 3), 128, np.uint8)
    out = render_overlay(
        img,
        np.zeros((16, 16)),
        decision="blocked",
        probabilities=PROBS,
        box=[300, 300, 500, 400],
        alpha=0.0,
    )
    edge = out[350, 300].astype(int)  # on the left edge of the box
    assert np.abs(edge - np.array(DECISION_COLOURS["blocked"])).max() < 40


def test_heat_is_hot_where_the_cam_is_high():
    img = np.full((480, 640, 3), 128, np.uint8)
    out = render_overlay(img, _cam(), decision="free", probabilities={}, alpha=0.6)
    hot = out[300, 180].astype(int)  # inside the blob (cells 8..11 x 4..7)
    cold = out[470, 630].astype(int)
    assert hot[2] > hot[0] and cold[0] > cold[2]  # red-ish vs blue-ish in BGR


def test_panel_text_scales_with_resolution():
    """The dark panel must grow with the image so text stays legible at 1920x1080."""

    def panel_width(w, h):
        img = np.full((h, w, 3), 200, np.uint8)
        out = render_overlay(
            img, np.zeros((16, 16)), decision="free", probabilities=PROBS, alpha=0.0
        )
        dark = (out[h // 100 + 2] < 100).all(axis=1)
        return int(np.argmin(dark)) if not dark.all() else w

    assert panel_width(1920, 1080) > 1.8 * panel_width(640, 480)


def test_cam_mono8_and_contact_sheet():
    mono = cam_mono8(_cam(), (320, 240))
    assert mono.shape == (240, 320) and mono.dtype == np.uint8 and mono.max() == 255
    sheet = contact_sheet(
        [np.zeros((100, 200, 3), np.uint8)] * 5, columns=3, tile_width=100, captions=list("abcde")
    )
    assert sheet.shape == (2 * 50, 3 * 100, 3)
