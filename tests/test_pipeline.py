"""Pipeline.analyze on the node's inputs: RGB views and reduced decodes of compressed frames."""

from __future__ import annotations

import cv2
import numpy as np

from gapcam.preprocess import decode_frame
from gapcam.stream import StreamProcessor


def test_rgb_order_gives_the_bgr_result(pipeline, scene_image):
    rgb = np.ascontiguousarray(scene_image[..., ::-1])
    a, b = pipeline.analyze(scene_image), pipeline.analyze(rgb, "RGB")
    np.testing.assert_array_equal(a.logits, b.logits)
    assert a.box == b.box and a.image_size == b.image_size == (640, 480)


def test_a_reduced_decode_reports_its_box_in_frame_pixels(pipeline, scene_image):
    big = cv2.resize(scene_image, (1280, 960), interpolation=cv2.INTER_LINEAR)
    ok, jpg = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 95])
    small, size = decode_frame(jpg.tobytes(), pipeline.card.input)
    assert small.shape[:2] == (240, 320) and size == (1280, 960)
    r_small = pipeline.analyze(small)
    r_frame = pipeline.analyze(small, frame_size=size)
    np.testing.assert_array_equal(r_small.logits, r_frame.logits)
    assert r_frame.image_size == (1280, 960)
    assert r_small.box is not None
    # mapped straight from network pixels to the frame: 4x the reduced image's box, to rounding
    assert np.abs(np.subtract(r_frame.box, np.multiply(r_small.box, 4))).max() <= 2
    # the overlay of the reduced image is drawn at scale x the frame, box where it belongs
    proc = StreamProcessor(pipeline)
    out = proc.process("c", small, 1, "f", frame_size=size)
    assert proc.render(small, out, scale=0.5).shape == (480, 640, 3)
