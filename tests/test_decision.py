"""Decision smoothing: hysteresis, hold frames and the low-confidence fallback."""

from __future__ import annotations

import pytest

from gapcam.decision import DecisionSmoother, SmoothingConfig
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
    s = DecisionSmoother(LANE_CHANGE_CLASSES, SmoothingConfig(min_confidence=0.6))
    d = s.update((0.45, 0.40, 0.15))
    assert d.label == "undefined" and d.confidence == pytest.approx(0.45)


def test_no_smoothing_follows_every_frame_with_hold_one():
    s = DecisionSmoother(LANE_CHANGE_CLASSES, SmoothingConfig(ema_alpha=1.0, hold_frames=1))
    assert [s.update(p).label for p in (FREE_P, BLOCKED_P, FREE_P)] == ["free", "blocked", "free"]


def test_rejects_wrong_probability_count_and_bad_config():
    s = DecisionSmoother(LANE_CHANGE_CLASSES)
    with pytest.raises(ValueError):
        s.update((0.5, 0.5))
    with pytest.raises(ValueError):
        SmoothingConfig(ema_alpha=0.0)
