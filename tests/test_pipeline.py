"""The pipeline: the node's inputs (RGB views, reduced decodes of compressed frames), and the CAM
variant and box threshold chosen and checked once, when it is made."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from gapcam.backends import load_backend
from gapcam.cam import DEFAULT_CAM_THRESHOLD, eigen_cam, normalize_cam
from gapcam.errors import GapcamError
from gapcam.pipeline import Pipeline, cam_box_in_image
from gapcam.preprocess import decode_frame, preprocess
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


def test_eigen_on_a_model_without_features_is_refused_when_made(model_without_features):
    backend = load_backend(model_without_features)
    assert not backend.has_features
    with pytest.raises(GapcamError, match="'eigen' needs a model exported with the 'features'"):
        Pipeline(backend, cam_class="eigen")
    # the same model serves every other variant
    assert Pipeline(backend, cam_class="blocked").analyze(np.zeros((60, 80, 3), np.uint8))


def test_unknown_cam_class_is_refused_when_made(shipped_model):
    with pytest.raises(GapcamError, match="cam class 'car' unknown; use 'predicted', 'eigen'"):
        Pipeline.from_model(shipped_model, cam_class="car")


@pytest.mark.parametrize("cam_class", ["predicted", "eigen", "free"])
def test_each_variant_draws_its_own_map(shipped_model, scene_image, cam_class):
    pipe = Pipeline.from_model(shipped_model, cam_class=cam_class)
    r = pipe.analyze(scene_image)
    out = pipe.backend.infer(preprocess(scene_image, pipe.card.input))
    if cam_class == "eigen":
        want, which = eigen_cam(out.features[0]), "eigen"
    else:
        which = r.raw_decision if cam_class == "predicted" else cam_class
        want = out.cam[0, pipe.classes.index(which)]
    assert r.cam_class == which
    np.testing.assert_allclose(r.cam, normalize_cam(want), atol=1e-5)
    with pytest.raises(AttributeError):
        pipe.cam_class = "blocked"  # fixed when made: a new variant needs a new pipeline


def test_threshold_defaults_to_the_cards_then_to_zhou(shipped_model, scene_image):
    backend = load_backend(shipped_model)
    assert backend.card.cam_threshold is not None
    pipe = Pipeline(backend)
    assert pipe.cam_threshold == backend.card.cam_threshold
    r = pipe.analyze(scene_image)
    h, w = scene_image.shape[:2]
    assert r.box == cam_box_in_image(r.cam, backend.card.input, (w, h), pipe.cam_threshold)
    assert Pipeline(backend, cam_threshold=0.2).cam_threshold == 0.2  # one argument away
    backend.card = dataclasses.replace(backend.card, cam_threshold=None)
    assert Pipeline(backend).cam_threshold == DEFAULT_CAM_THRESHOLD
    pipe.set_cam_threshold(0.5)
    assert pipe.cam_threshold == 0.5
    with pytest.raises(GapcamError, match="must lie in 0..1"):
        Pipeline(backend, cam_threshold=1.5)


def test_the_reused_input_blob_changes_no_result(pipeline, shipped_model) -> None:
    """Frame after frame, batch sizes 1 and 2, and from two threads at once: every result equals
    what a fresh pipeline computes for the same image (the input blob is reused per thread)."""
    import threading

    from gapcam.synth import render_scene

    images = [render_scene(900 + i, size=(640, 360))[0] for i in range(4)]
    want = [Pipeline.from_model(shipped_model).analyze(im) for im in images]

    def same(got, ref) -> bool:
        return np.array_equal(got.probabilities, ref.probabilities) and got.box == ref.box

    assert all(same(pipeline.analyze(im), ref) for im, ref in zip(images, want, strict=True))
    pair = pipeline.analyze_batch(images[:2])
    assert all(same(g, r) for g, r in zip(pair, want[:2], strict=True))
    assert same(pipeline.analyze(images[3]), want[3])  # back to one image
    ok: list[bool] = []

    def run(order: list[int]) -> None:
        ok.extend(same(pipeline.analyze(images[i]), want[i]) for i in order * 5)

    threads = [threading.Thread(target=run, args=(o,)) for o in ([0, 1], [2, 3])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(ok) == 20 and all(ok)
