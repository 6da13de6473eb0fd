"""Overlay rendering: shape, type, and that it actually draws what it claims."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from gapcam.overlay import (
    DECISION_COLOURS,
    OverlayBuffers,
    cam_mono8,
    contact_sheet,
    heatmap,
    render_overlay,
)

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


def test_overlay_drawn_at_output_size_from_an_rgb_view_with_reused_buffers():
    """The node's path: a read-only RGB view of the frame, drawn at half size into buffers."""
    rng = np.random.default_rng(1)
    bgr = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    rgb = np.frombuffer(bgr[..., ::-1].tobytes(), np.uint8).reshape(480, 640, 3)  # read-only
    kw = dict(decision="blocked", probabilities=PROBS, box=[100, 100, 300, 200], caption="x")
    want = render_overlay(bgr, _cam(), size=(320, 240), **kw)
    buffers = OverlayBuffers()
    got = render_overlay(rgb, _cam(), size=(320, 240), order="RGB", buffers=buffers, **kw)
    assert got.shape == (240, 320, 3)
    np.testing.assert_array_equal(got, want)
    again = render_overlay(rgb, _cam(), size=(320, 240), order="RGB", buffers=buffers, **kw)
    assert again is got  # the same memory every frame
    assert render_overlay(bgr, _cam(), size=(320, 240), **kw) is not want  # no buffers: new


def test_box_is_scaled_from_its_own_pixel_space():
    """A box in full-frame pixels lands in the same place on a half-size (reduced) image."""
    img = np.full((240, 320, 3), 128, np.uint8)
    kw = dict(decision="blocked", probabilities={}, alpha=0.0)
    a = render_overlay(
        img, np.zeros((16, 16)), box=[200, 200, 600, 400], box_space=(640, 480), **kw
    )
    b = render_overlay(img, np.zeros((16, 16)), box=[100, 100, 300, 200], **kw)
    np.testing.assert_array_equal(a, b)


def test_heat_map_is_the_jet_colour_of_the_8bit_upsampled_map():
    cam = np.random.default_rng(2).random((16, 16)).astype(np.float32)
    mono = cam_mono8(cam, (320, 240))
    np.testing.assert_array_equal(
        heatmap(cam, (320, 240)), cv2.applyColorMap(mono, cv2.COLORMAP_JET)
    )
    # one quantisation step from the float upsampling it replaces
    ref = np.clip(cv2.resize(cam, (320, 240), interpolation=cv2.INTER_LINEAR) * 255 + 0.5, 0, 255)
    assert np.abs(mono.astype(int) - ref.astype(int)).max() <= 2
