"""CAM maths on constructed maps: box extraction, peak, Eigen-CAM, the GAP identity."""

from __future__ import annotations

import numpy as np
import pytest

from gapcam.cam import box_iou, cam_box, cam_peak, eigen_cam, gap_identity_error, normalize_cam


def test_box_of_single_blob_matches_its_extent():
    m = np.zeros((16, 16), np.float32)
    m[4:8, 10:14] = 1.0  # cells x 10..13, y 4..7 -> pixels x 80..112, y 32..64 at 128 px
    box = cam_box(m, (128, 128), threshold=0.5)
    assert box is not None
    x0, y0, x1, y1 = box
    # Bilinear upsampling smears half a cell (4 px) each side at most.
    assert abs(x0 - 80) <= 4 and abs(x1 - 112) <= 4
    assert abs(y0 - 32) <= 4 and abs(y1 - 64) <= 4


def test_largest_component_wins_over_a_stronger_but_smaller_one():
    m = np.zeros((16, 16), np.float32)
    m[1:3, 1:3] = 1.0  # small, strongest
    m[8:15, 6:14] = 0.8  # large
    box = cam_box(m, (160, 160), threshold=0.2)
    assert box is not None and box[0] > 40 and box[1] > 60  # the large blob, not the corner


def test_threshold_controls_box_size():
    yy, xx = np.mgrid[0:16, 0:16]
    m = np.exp(-((xx - 8) ** 2 + (yy - 8) ** 2) / 18.0).astype(np.float32)
    small = cam_box(m, (128, 128), threshold=0.8)
    large = cam_box(m, (128, 128), threshold=0.2)
    assert (small[2] - small[0]) < (large[2] - large[0])


def test_flat_map_has_no_box():
    assert cam_box(np.full((16, 16), 3.0, np.float32), (64, 64)) is None
    assert not normalize_cam(np.ones((4, 4))).any()


def test_peak_in_image_pixels():
    m = np.zeros((16, 16), np.float32)
    m[12, 3] = 1.0
    x, y = cam_peak(m, (1280, 720))
    assert abs(x - (3.5 * 80)) <= 80 and abs(y - (12.5 * 45)) <= 45


def test_eigen_cam_finds_the_dominant_pattern_with_positive_sign():
    rng = np.random.default_rng(0)
    pattern = np.zeros((8, 8), np.float32)
    pattern[2:5, 5:8] = 1.0
    feats = rng.normal(0, 0.05, (32, 8, 8)).astype(np.float32)
    feats += rng.uniform(0.5, 1.5, (32, 1, 1)).astype(np.float32) * pattern
    e = normalize_cam(eigen_cam(feats))
    assert e[3, 6] > 0.8 and e[0, 0] < 0.3


def test_gap_identity_error_detects_a_wrong_bias():
    rng = np.random.default_rng(1)
    cam = rng.normal(size=(2, 3, 4, 4)).astype(np.float32)
    bias = np.array([0.1, -0.2, 0.3], np.float32)
    logits = cam.mean(axis=(2, 3)) + bias
    assert gap_identity_error(cam, logits, bias) < 1e-6
    assert gap_identity_error(cam, logits, bias + 0.01) == pytest.approx(0.01, abs=1e-6)


def test_iou():
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert box_iou([0, 0, 10, 10], None) == 0.0


def test_cam_box_is_the_same_with_16_and_32_bit_labels() -> None:
    """cam_box labels components in 16 bits where they cannot overflow: same boxes as 32."""
    import cv2

    from gapcam.cam import _label_type, upsample

    rng = np.random.default_rng(11)
    for i in range(50):
        m = rng.random((14, 14)).astype(np.float32) ** (1 + i % 4)
        for size, threshold in [((224, 224), 0.7), ((128, 128), 0.3), ((640, 360), 0.5)]:
            up = upsample(normalize_cam(m), size)
            mask = (up >= threshold * float(up.max())).astype(np.uint8)
            count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
            best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            x, y, w, h = (int(v) for v in stats[best, :4])
            assert cam_box(m, size, threshold) == [x, y, x + w, y + h]
    assert _label_type((224, 224)) == cv2.CV_16U
    assert _label_type((1280, 720)) == cv2.CV_32S  # 640 x 360 components could overflow 16 bits
