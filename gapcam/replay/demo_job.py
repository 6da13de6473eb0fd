"""The replay part of ``make demo``: sample bag -> replay through the node's pipeline -> output bag
and report, with the paths printed at the end.

The sample bag is made once with the synthetic generator (a vehicle approaching, then
overtaking, on two rear-side cameras) and reused on later runs, so a second ``make demo`` only
replays. Sized to finish in well under a minute on two CPU cores.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from gapcam.errors import GapcamError
from gapcam.shipped import default_model


def _is_bag(path: Path) -> bool:
    return (path / "metadata.yaml").is_file()


def _remove_previous(path: Path) -> None:
    """Delete a previous demo output (only a bag directory or a report folder we wrote)."""
    if not path.exists():
        return
    if path.is_dir() and (_is_bag(path) or (path / "report.md").is_file()):
        shutil.rmtree(path)
    else:
        raise GapcamError(f"{path}: exists and is not a previous demo output; move it away")


def run_demo(
    out_dir: str | Path,
    *,
    model: str | Path | None = None,
    storage: str = "mcap",
    progress: bool = False,
    frames_per_sequence: int = 60,
    size: tuple[int, int] = (640, 480),
) -> dict[str, Any]:
    """Make (or reuse) ``out_dir/sample_bag``, replay it to ``out_dir/replay_bag`` + report.

    Returns the paths and the headline figures; prints where everything is.
    """
    from gapcam.replay.make_bag import make_bag
    from gapcam.replay.replay import ReplayOptions, replay_bag
    from gapcam.replay.report import report_dir_for

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sample = out / "sample_bag"
    reused = _is_bag(sample)
    if reused:
        print(f"[demo] reusing sample bag {sample}")
    else:
        if sample.exists():
            shutil.rmtree(sample)  # an interrupted earlier make-bag: start again
        info = make_bag(sample, storage=storage, frames_per_sequence=frames_per_sequence, size=size)
        print(
            f"[demo] wrote sample bag {sample}: {info['frames']} frames, 2 cameras, "
            f"{info['duration_s']:.0f} s ({storage})"
        )
    replayed = out / "replay_bag"
    _remove_previous(replayed)
    _remove_previous(report_dir_for(replayed))
    if model is None:
        model = default_model()
    summary = replay_bag(
        sample, replayed, ReplayOptions(model=model, storage=storage, progress=progress)
    )
    report = Path(summary.report_dir or "") / "report.md"
    acc = "" if summary.accuracy is None else f", accuracy {summary.accuracy:.3f} vs ground truth"
    print(
        f"[demo] replayed {summary.frames} frames at {summary.fps:.1f} frames/s "
        f"({summary.realtime_factor:.1f}x real time){acc}"
    )
    print(f"[demo] output bag: {replayed}  (ros2 bag info {replayed})")
    print(f"[demo] report: {report}")
    return {
        "sample_bag": str(sample),
        "sample_bag_reused": reused,
        "output_bag": str(replayed),
        "report": str(report),
        "frames": summary.frames,
        "fps": summary.fps,
        "realtime_factor": summary.realtime_factor,
        "accuracy": summary.accuracy,
    }
