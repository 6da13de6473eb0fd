"""The labelling rules on hand-made facts: thresholds, visibility and precedence."""

from __future__ import annotations

import pytest

from gapcam.synth import labels as L

W = 224


def facts(**kw) -> L.ViewFacts:
    base = dict(
        image_width=W,
        adjacent_lane=True,
        lens_coverage=0.0,
        ambient=1.0,
        glare=0.0,
        fog_visibility_m=None,
        sensor_fault=None,
    )
    base.update(kw)
    return L.ViewFacts(**base)


def car(lane: str, d: float, width: int = 60) -> L.SeenVehicle:
    return L.SeenVehicle(lane, d, (100, 80, 100 + width, 140))


def test_empty_adjacent_lane_is_free():
    assert L.judge([], facts()).label == "free"


@pytest.mark.parametrize(
    ("d", "label"),
    [
        (-3.0, "blocked"),
        (0.0, "blocked"),
        (L.DANGER_ZONE_M, "blocked"),
        (L.DANGER_ZONE_M + 0.01, "free"),
        (L.FREE_BEYOND_M, "free"),
    ],
)
def test_danger_zone_threshold(d, label):
    assert L.judge([car("adjacent", d)], facts()).label == label


def test_only_the_adjacent_lane_counts():
    others = [car("ego", 3.0), car("beyond", 1.0), car("right", 5.0)]
    assert L.judge(others, facts()).label == "free"


def test_out_of_view_or_sliver_does_not_block():
    assert L.judge([L.SeenVehicle("adjacent", 2.0, None)], facts()).label == "free"
    sliver = int(L.MIN_VISIBLE_WIDTH_FRAC * W) - 1
    assert L.judge([car("adjacent", 2.0, width=sliver)], facts()).label == "free"


def test_blocking_vehicle_is_the_nearest_in_zone():
    vs = [car("adjacent", 15.0), car("ego", 1.0), car("adjacent", 4.0), car("adjacent", 50.0)]
    j = L.judge(vs, facts())
    assert j.label == "blocked" and j.blocking_index == 2


@pytest.mark.parametrize(
    ("kw", "cause"),
    [
        (dict(adjacent_lane=False), "no_adjacent_lane"),
        (dict(lens_coverage=L.LENS_UNDEFINED_COVERAGE), "lens_occluded"),
        (dict(ambient=L.DARK_UNDEFINED_AMBIENT - 0.01), "too_dark"),
        (dict(glare=L.GLARE_UNDEFINED_STRENGTH), "sun_glare"),
        (dict(fog_visibility_m=L.FOG_UNDEFINED_VISIBILITY_M - 1), "dense_fog"),
        (dict(sensor_fault="stripes"), "sensor_fault"),
    ],
)
def test_undefined_overrides_a_blocker(kw, cause):
    j = L.judge([car("adjacent", 3.0)], facts(**kw))
    assert j.label == "undefined" and cause in j.causes and j.blocking_index is None


def test_benign_margins_sit_on_the_judgeable_side():
    ok = facts(
        lens_coverage=L.LENS_OK_COVERAGE - 1e-3,
        ambient=L.DARK_OK_AMBIENT,
        glare=L.GLARE_OK_STRENGTH,
        fog_visibility_m=L.FOG_OK_VISIBILITY_M,
    )
    assert L.undefined_causes(ok) == ()
    assert L.DANGER_ZONE_M < L.FREE_BEYOND_M
