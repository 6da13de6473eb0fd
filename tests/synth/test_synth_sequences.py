"""generate_sequence: the story of each kind, per-frame labels, smooth motion, coherence."""

from __future__ import annotations

import numpy as np
import pytest

from gapcam.synth import SEQUENCE_KINDS, generate_sequence
from gapcam.synth import labels as L

SIZE = (160, 120)
N = 24


@pytest.fixture(scope="module")
def clips():
    return {
        k: generate_sequence(k, seed=3, n_frames=N, fps=12.0, size=SIZE) for k in SEQUENCE_KINDS
    }


def _labels(frames):
    return [m["label"] for _, m in frames]


def _changes(seq):
    return [i for i in range(1, len(seq)) if seq[i] != seq[i - 1]]


def _adjacent_distance(meta):
    d = [v["distance_m"] for v in meta["vehicles"] if v["lane"] == "adjacent"]
    return d[0] if d else None


def test_kinds_exist():
    assert {"approach", "overtake", "pass"} <= set(SEQUENCE_KINDS)


def test_frames_time_and_shape(clips):
    for kind, frames in clips.items():
        assert len(frames) == N
        for i, (img, m) in enumerate(frames):
            assert img.shape == (SIZE[1], SIZE[0], 3)
            assert m["frame"] == i and m["t"] == pytest.approx(i / 12.0)
            assert m["side"] == "left" and m["sequence"] == kind


def test_approach_closes_in_monotonically_and_becomes_blocked(clips):
    frames = clips["approach"]
    d = [_adjacent_distance(m) for _, m in frames]
    assert all(x is not None for x in d)
    assert all(b <= a for a, b in zip(d, d[1:], strict=False))
    assert d[0] > L.DANGER_ZONE_M >= d[-1]
    labels = _labels(frames)
    assert labels[0] == "free" and labels[-1] == "blocked" and len(_changes(labels)) == 1
    # the switch happens where the rule says: the first frame inside the danger zone
    first_blocked = labels.index("blocked")
    assert d[first_blocked] <= L.DANGER_ZONE_M < d[first_blocked - 1]


def test_overtake_goes_blocked_then_free(clips):
    labels = _labels(clips["overtake"])
    assert labels[0] == "blocked" and labels[-1] == "free" and len(_changes(labels)) == 1
    assert _adjacent_distance(clips["overtake"][-1][1]) is None  # left the view ahead


def test_pass_goes_free_blocked_free(clips):
    labels = _labels(clips["pass"])
    assert labels[0] == "free" and labels[-1] == "free" and "blocked" in labels
    assert len(_changes(labels)) == 2


def test_deteriorate_ends_undefined(clips):
    labels = _labels(clips["deteriorate"])
    assert labels[0] != "undefined" and labels[-1] == "undefined"
    assert len(_changes(labels)) == 1


def test_freeze_repeats_the_last_frame_and_is_undefined(clips):
    frames = clips["freeze"]
    labels = _labels(frames)
    k = labels.index("undefined")
    assert k >= 1 and set(labels[k:]) == {"undefined"}
    assert all(np.array_equal(img, frames[k - 1][0]) for img, _ in frames[k:])
    assert not np.array_equal(frames[k - 1][0], frames[k - 2][0])  # it moved before freezing
    m = frames[-1][1]
    assert m["conditions"]["sensor_fault"] == "frozen" and m["blocking_box"] is None
    assert m["conditions"]["undefined_causes"] == ["sensor_fault"] and m["frame"] == N - 1


def test_motion_is_smooth(clips):
    for kind in ("approach", "overtake", "pass"):
        d = np.array(
            [x for x in map(_adjacent_distance, (m for _, m in clips[kind])) if x is not None]
        )
        steps = np.abs(np.diff(d))
        assert steps.max() < 8.0  # < 100 m/s relative at 12 fps: no jumps


def test_background_is_coherent(clips):
    """Conditions and road stay fixed; consecutive frames differ far less than random scenes."""
    frames = clips["overtake"]
    conds = [m["conditions"] for _, m in frames]
    assert all(c == conds[0] for c in conds)
    a, b = frames[0][0].astype(int), frames[1][0].astype(int)
    other = generate_sequence("overtake", seed=4, n_frames=1, size=SIZE)[0][0].astype(int)
    assert np.abs(a - b).mean() < 0.5 * np.abs(a - other).mean()


def test_deterministic_and_side(clips):
    again = generate_sequence("approach", seed=3, n_frames=N, fps=12.0, size=SIZE)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(clips["approach"], again, strict=True))
    right = generate_sequence("approach", seed=3, n_frames=2, fps=12.0, side="right", size=SIZE)
    assert right[0][1]["side"] == "right"
    assert np.array_equal(right[0][0], clips["approach"][0][0][:, ::-1])


def test_bad_kind():
    with pytest.raises(ValueError):
        generate_sequence("teleport", seed=1)
