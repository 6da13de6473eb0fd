"""Choosing a model's CAM box threshold on validation images, and using it by default."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from gapcam.backends import load_backend
from gapcam.cam import DEFAULT_CAM_THRESHOLD
from gapcam.cam_threshold import (
    CANDIDATES,
    BoxedCam,
    box_ious,
    boxed_cams,
    choose_cam_threshold,
    resolve_cam_threshold,
    write_cam_threshold,
)
from gapcam.dataset import scan_folder
from gapcam.errors import GapcamError
from gapcam.model_card import InputSpec, ModelCard, card_path_for, sha256_file
from gapcam.synth import generate_dataset

SPEC = InputSpec(width=64, height=64)


def _peaked(box: tuple[int, int, int, int], size: int = 64) -> np.ndarray:
    """A map with a plateau of 1 on ``box`` and a skirt of 0.5 two cells around it, so a low
    threshold takes the skirt (a box too big) and only a high one gives the box itself."""
    m = np.zeros((size, size), np.float32)
    x0, y0, x1, y1 = box
    m[max(0, y0 - 8) : y1 + 8, max(0, x0 - 8) : x1 + 8] = 0.5
    m[y0:y1, x0:x1] = 1.0
    return m


def test_the_threshold_whose_boxes_fit_best_is_chosen():
    truths = [(10, 10, 30, 40), (30, 20, 50, 44), (20, 30, 44, 50)]
    samples = [BoxedCam(_peaked(t), t, (64, 64), SPEC) for t in truths]
    choice = choose_cam_threshold(samples)
    # above 0.5 the skirt is gone and the box is exact; ties go to the lowest such threshold
    assert choice.threshold == 0.55
    assert choice.iou50 == 1.0 and choice.mean_iou == pytest.approx(1.0)
    assert choice.scores[0.2][1] < 0.5  # the skirt doubles the box at Zhou's 20%
    assert choice.images == 3
    np.testing.assert_allclose(box_ious(samples, 0.55), 1.0)


def test_nothing_to_choose_on_is_an_error():
    with pytest.raises(GapcamError, match="no validation images with a ground-truth box"):
        choose_cam_threshold([])


def test_resolution_order_override_card_zhou(shipped_model):
    card = ModelCard.load(card_path_for(shipped_model))
    assert resolve_cam_threshold(card, 0.3) == 0.3
    assert resolve_cam_threshold(card) == card.cam_threshold
    assert resolve_cam_threshold(dataclasses.replace(card, cam_threshold=None)) == 0.2
    assert DEFAULT_CAM_THRESHOLD == 0.2
    with pytest.raises(GapcamError, match="0..1"):
        resolve_cam_threshold(card, -0.1)


def test_shipped_card_carries_its_validation_threshold(shipped_model):
    """Chosen on the training's validation split (800 images, 263 boxes), not the held-out set."""
    card = ModelCard.load(card_path_for(shipped_model))
    assert card.cam_threshold in CANDIDATES
    assert card.metrics["cam_threshold_images"] == 263
    assert card.metrics["cam_metrics_threshold"] == card.cam_threshold
    assert card.metrics["cam_iou50"] >= 0.6  # held-out, at that threshold


def test_write_cam_threshold_changes_the_card_not_the_model(tmp_path, shipped_model):
    model = tmp_path / "m.onnx"
    shutil.copy(shipped_model, model)
    card = dataclasses.replace(ModelCard.load(card_path_for(shipped_model)), cam_threshold=None)
    card.save(card_path_for(model))
    data = generate_dataset(tmp_path / "val", 9, seed=3, size=(160, 120), workers=1)
    samples = scan_folder(data).samples
    backend = load_backend(model)
    boxed = boxed_cams(backend, samples, progress=False)
    assert len(boxed) == sum(1 for s in samples if s.meta.get("blocking_box"))
    assert all(b.size == (160, 120) for b in boxed)

    new = write_cam_threshold(model, samples, progress=False)
    assert new is not None and new.cam_threshold == choose_cam_threshold(boxed).threshold
    assert sha256_file(model) == card.onnx_sha256  # the network is untouched
    saved = json.loads(card_path_for(model).read_text())
    assert saved["cam_threshold"] == new.cam_threshold
    assert saved["metrics"]["cam_threshold_images"] == len(boxed)
    free = [s for s in samples if s.label != "blocked"]
    assert write_cam_threshold(model, free, progress=False) is None  # no boxes: card kept
