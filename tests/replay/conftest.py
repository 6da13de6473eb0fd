"""Fixtures for replay tests: small real rosbag2 files (mcap and sqlite3) made by make-bag, and one
replay of the mcap bag shared by the tests that only inspect its output."""

from __future__ import annotations

from pathlib import Path

import pytest

from gapcam.replay.make_bag import make_bag

#: Small frames and short sequences keep the whole folder fast; the decision logic is the same.
SIZE = (320, 240)
FRAMES = 12


@pytest.fixture(scope="session")
def bag_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bags")


@pytest.fixture(scope="session")
def sample_bag(bag_root) -> Path:
    """mcap, two cameras raw + compressed, ground truth, approach then overtake."""
    path = bag_root / "sample_mcap"
    make_bag(path, storage="mcap", frames_per_sequence=FRAMES, size=SIZE, fps=15.0)
    return path


@pytest.fixture(scope="session")
def sample_bag_sqlite(bag_root) -> Path:
    path = bag_root / "sample_sqlite3"
    make_bag(path, storage="sqlite3", frames_per_sequence=FRAMES, size=SIZE, fps=10.0, seed=3)
    return path


@pytest.fixture(scope="session")
def replayed(sample_bag, bag_root, pipeline):
    """(summary, output bag) of one full replay of ``sample_bag`` with the shipped model."""
    from gapcam.replay.replay import ReplayOptions, replay_bag

    out = bag_root / "replayed_mcap"
    summary = replay_bag(sample_bag, out, ReplayOptions(progress=False), pipeline=pipeline)
    return summary, out
