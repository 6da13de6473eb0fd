"""Fleet report ordering and totals (pure functions over per-bag results)."""

from __future__ import annotations

from gapcam.fleet.summary import totals, worst_first


def _r(name, status="ok", acc=None, cpm=None, frames=10, labelled=None, reused=False):
    return {
        "name": name,
        "status": status,
        "accuracy": acc,
        "changes_per_min": cpm,
        "frames": frames,
        "labelled_frames": labelled,
        "recorded_s": 60.0,
        "cameras": 2,
        "decision_changes": int((cpm or 0) * 2),
        "reused": reused,
    }


def test_worst_first_failed_then_accuracy_then_flicker():
    rows = [
        _r("good", acc=0.99, cpm=1),
        _r("flicker", cpm=30),
        _r("calm", cpm=2),
        _r("bad", acc=0.5, cpm=1),
        _r("broken", "failed", frames=0),
        _r("stopped", "interrupted"),
        _r("lost", "lost", frames=0),
    ]
    order = [r["name"] for r in worst_first(rows)]
    assert order == ["broken", "lost", "stopped", "bad", "good", "flicker", "calm"]


def test_totals_weight_accuracy_by_labelled_frames_and_count_only_fresh_frames():
    rows = [
        _r("a", acc=1.0, labelled=30, frames=30, cpm=3),
        _r("b", acc=0.5, labelled=10, frames=10, reused=True, cpm=1),
        _r("c", "failed", frames=0),
    ]
    t = totals(rows, wall_s=2.0)
    assert t["accuracy"] == round((30 * 1.0 + 10 * 0.5) / 40, 4)
    assert t["replayed_frames"] == 30 and t["replayed_fps"] == 15.0  # b came from an earlier run
    assert (t["ok"], t["failed"], t["reused"], t["bags"]) == (2, 1, 1, 3)
    assert t["changes_per_min"] == round((6 + 2) / (3 * 60.0 * 2 / 60), 3)
