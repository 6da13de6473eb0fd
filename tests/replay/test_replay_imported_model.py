"""Replay with a user's 5-class model brought in by ``gapcam import``: decisions use the model's
classes and top-1, and lane-change ground truth is reported as "not the model's classes" instead
of an accuracy of 0.0."""

from __future__ import annotations

from replay_helpers import read_bag

from gapcam.cli import main
from gapcam.replay.replay import ReplayOptions, replay_bag

FIVE = ("car", "truck", "bike", "person", "empty")  # tests/conftest.py FIVE_CLASSES


def test_replay_with_an_imported_five_class_model(sample_bag, bag_root, imported_five_class):
    out = bag_root / "replayed_five"
    summary = replay_bag(
        sample_bag, out, ReplayOptions(model=imported_five_class, progress=False, max_frames=16)
    )
    assert summary.status == "complete" and summary.frames == 16
    assert summary.accuracy is None
    assert "are not the model's classes" in summary.ground_truth_note
    assert "accuracy not computed" in summary.ground_truth_note
    report = (bag_root / "replayed_five_report" / "report.md").read_text()
    assert "are not the model's classes" in report and "Accuracy against" not in report
    decisions = [
        m for topic, msgs in read_bag(out).items() if topic.endswith("decision") for _, m in msgs
    ]
    assert decisions and all(tuple(m.class_names) == FIVE for m in decisions)
    assert {m.decision_label for m in decisions} <= set(FIVE)


def test_replay_cli_fallback_override_and_note(sample_bag, bag_root, imported_five_class, capsys):
    out = bag_root / "replayed_five_cli"
    code = main(
        [
            "replay",
            str(sample_bag),
            "--out",
            str(out),
            "--model",
            str(imported_five_class),
            "--fallback-class",
            "empty",
            "--max-frames",
            "8",
            "--no-progress",
            "--no-report",
        ]
    )
    assert code == 0
    said = capsys.readouterr()
    assert "not the model's classes" in said.out and "accuracy against" not in said.out
    decisions = [
        m for topic, msgs in read_bag(out).items() if topic.endswith("decision") for _, m in msgs
    ]
    # A random 5-class net is never confident (< 0.5), so the override's fallback is published.
    assert decisions and {m.decision_label for m in decisions} == {"empty"}
    code = main(
        [
            "replay",
            str(sample_bag),
            "--out",
            str(bag_root / "x"),
            "--model",
            str(imported_five_class),
            "--fallback-class",
            "lorry",
            "--no-progress",
        ]
    )
    assert code == 2 and "'lorry' is not one of the model's classes" in capsys.readouterr().err
