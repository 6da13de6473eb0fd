"""Decision smoothing: hysteresis, hold frames and the low-confidence fallback."""

from __future__ import annotations

import pytest

from gapcam.decision import DecisionSmoother, SmoothingConfig, resolve_fallback
from gapcam.errors import GapcamError
from gapcam.labels import LANE_CHANGE_CLASSES

BLOCKED_P = (0.9, 0.05, 0.05)
FREE_P = (0.05, 0.9, 0.05)


def test_first_frame_is_taken_as_is():
    s = DecisionSmoother(LANE_CHANGE_CLASSES)
    d = s.update(FREE_P)
    assert d.label == "free" and not d.changed


def test_single_outlier_frame_does_not_flip_the_decision():
    s = DecisionSmoother(LANE_CHANGE_CLASSES, SmoothingConfig(ema_alpha=0.6, hold_frames=2))
    for _ in range(5):
        s.update(FREE_P)
    assert s.update(BLOCKED_P).label == "free"
    assert s.update(FREE_P).label == "free"


def test_sustained_change_switches_after_hold_frames_and_reports_it():
    s = DecisionSmoother(LANE_CHANGE_CLASSES, SmoothingConfig(ema_alpha=0.6, hold_frames=2))
    for _ in range(5):
        s.update(FREE_P)
    labels = [s.update(BLOCKED_P) for _ in range(4)]
    switched = [i for i, d in enumerate(labels) if d.changed]
    assert len(switched) == 1 and labels[-1].label == "blocked"
    assert switched[0] >= 1  # not on the first blocked frame


def test_low_confidence_falls_back_to_undefined():
    s = DecisionSmoother(LANE_CHANGE_CLASSES, SmoothingConfig(min_confidence=0.6), "undefined")
    d = s.update((0.45, 0.40, 0.15))
    assert d.label == "undefined" and d.confidence == pytest.approx(0.45)


FIVE = ("car", "truck", "bike", "person", "empty")


def test_without_a_fallback_class_the_top1_is_published_not_the_last_class():
    """The bug of issue 10: with 5 classes a weak `car` was published as `empty`."""
    s = DecisionSmoother(FIVE, SmoothingConfig(min_confidence=0.5))
    d = s.update((0.40, 0.20, 0.15, 0.15, 0.10))
    assert d.label == "car" and d.confidence == pytest.approx(0.40)


def test_fallback_class_applies_only_below_min_confidence():
    s = DecisionSmoother(FIVE, SmoothingConfig(ema_alpha=1.0, hold_frames=1), "empty")
    assert s.update((0.40, 0.20, 0.15, 0.15, 0.10)).label == "empty"
    assert s.update((0.10, 0.70, 0.10, 0.05, 0.05)).label == "truck"


def test_fallback_class_must_be_a_class_and_empty_means_none():
    with pytest.raises(GapcamError, match="'unknown' is not one of the model's classes"):
        DecisionSmoother(FIVE, fallback="unknown")
    assert DecisionSmoother(FIVE, fallback="").fallback is None
    assert resolve_fallback(FIVE, None) is None and resolve_fallback(FIVE, "bike") == "bike"


def test_stream_and_pipeline_take_the_cards_fallback_unless_overridden(shipped_model):
    from gapcam.pipeline import Pipeline
    from gapcam.stream import StreamProcessor

    pipe = Pipeline.from_model(shipped_model)
    assert pipe.fallback_class == "undefined"  # the shipped card's
    assert StreamProcessor(pipe).fallback_class == "undefined"
    assert StreamProcessor(pipe, fallback_class="").fallback_class is None
    assert StreamProcessor(pipe, fallback_class="free").smoother("c").fallback == "free"
    with pytest.raises(GapcamError):
        StreamProcessor(pipe, fallback_class="car")


def test_no_smoothing_follows_every_frame_with_hold_one():
    s = DecisionSmoother(LANE_CHANGE_CLASSES, SmoothingConfig(ema_alpha=1.0, hold_frames=1))
    assert [s.update(p).label for p in (FREE_P, BLOCKED_P, FREE_P)] == ["free", "blocked", "free"]


def test_rejects_wrong_probability_count_and_bad_config():
    s = DecisionSmoother(LANE_CHANGE_CLASSES)
    with pytest.raises(ValueError):
        s.update((0.5, 0.5))
    with pytest.raises(ValueError):
        SmoothingConfig(ema_alpha=0.0)
