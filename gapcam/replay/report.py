"""The replay report: Markdown + PNG next to the output bag (``<out_bag>_report/``).

Markdown because it renders in any code review tool and in the repository browser, and PNGs
because they open everywhere; ``summary.json`` and ``frames.csv`` carry the same numbers for
scripts. Contents: per-camera decision timeline with class probabilities, contact sheets of
overlays around every decision change, latency histogram, counts per class, and accuracy with a
confusion matrix when the bag carries ground truth.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from gapcam.overlay import contact_sheet
from gapcam.replay.collect import ChangeCollector, FrameRecord
from gapcam.replay.plots import histogram_image, timeline_image

if TYPE_CHECKING:
    from gapcam.replay.replay import ReplaySummary


def report_dir_for(out_bag: str | Path) -> Path:
    out_bag = Path(out_bag)
    return out_bag.parent / f"{out_bag.name}_report"


def _slug(camera: str) -> str:
    return camera.strip("/").replace("/", "_") or "camera"


def confusion(records: Sequence[FrameRecord], classes: Sequence[str]) -> np.ndarray:
    """Rows: ground truth, columns: published (smoothed) decision."""
    m = np.zeros((len(classes), len(classes)), np.int64)
    for r in records:
        if r.truth in classes:
            m[classes.index(r.truth), r.decision] += 1
    return m


def write_report(
    summary: ReplaySummary, collector: ChangeCollector, classes: Sequence[str]
) -> Path:
    """Write the report folder for ``summary``; returns its path."""
    out = report_dir_for(summary.output_bag)
    out.mkdir(parents=True, exist_ok=True)
    classes = list(classes)
    records = summary.records
    by_cam: dict[str, list[FrameRecord]] = {}
    for r in records:
        by_cam.setdefault(r.camera, []).append(r)
    t0 = min((r.stamp_ns for r in records), default=0)
    has_truth = any(r.truth is not None for r in records)

    lines = [
        "# Replay report",
        "",
        f"- input bag: `{summary.input_bag}`",
        f"- output bag: `{summary.output_bag}`",
        f"- model: `{summary.model_id}`",
        f"- status: **{summary.status}**" + (f" ({summary.error})" if summary.error else ""),
        f"- frames: {summary.frames} replayed, {summary.skipped} skipped; "
        f"{summary.recorded_s:.2f} s recorded, replayed in {summary.wall_s:.2f} s "
        f"({summary.fps:.1f} frames/s, {summary.realtime_factor:.2f}x real time)",
        "",
        "## Cameras",
        "",
        "| camera | topic | frames | rate Hz | latency mean / max ms | decision changes | skipped | out of order |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cam, info in summary.cameras.items():
        lat = info["latency_mean_ms"]
        lines.append(
            f"| `{cam}` | `{info['topic']}` | {info['frames']} | {info['input_rate_hz']} | "
            f"{'-' if lat is None else f'{lat:.1f}'} / {info['latency_max_ms']:.1f} | "
            f"{info['decision_changes']} | {info['skipped']} | {info['out_of_order']} |"
        )
    lines += ["", "## Counts per class", "", _counts_table(by_cam, classes), ""]

    if summary.ground_truth_note:
        lines += [f"> {summary.ground_truth_note}", ""]
    if has_truth and summary.accuracy is not None:
        from gapcam.charts import confusion_matrix_image

        m = confusion(records, classes)
        labelled = int(m.sum())
        raw_ok = sum(
            1 for r in records if r.truth in classes and classes[r.raw_decision] == r.truth
        )
        cv2.imwrite(
            str(out / "confusion.png"),
            confusion_matrix_image(m, classes, title="published decision vs ground truth"),
        )
        lines += [
            "## Accuracy against ground truth",
            "",
            f"- published (smoothed) decision: **{summary.accuracy:.4f}** on {labelled} labelled frames",
            f"- raw per-frame decision: {raw_ok / max(1, labelled):.4f}",
            "",
        ]
        for cam, recs in by_cam.items():
            lab = [r for r in recs if r.truth in classes]
            if lab:
                ok = sum(classes[r.decision] == r.truth for r in lab)
                lines.append(f"- `{cam}`: {ok / len(lab):.4f} ({len(lab)} frames)")
        lines += ["", "![confusion matrix](confusion.png)", ""]

    lines += ["## Decision timelines", ""]
    for cam, recs in by_cam.items():
        name = f"timeline_{_slug(cam)}.png"
        cv2.imwrite(str(out / name), _timeline(cam, recs, classes, t0, has_truth))
        lines += [f"### `{cam}`", "", f"![timeline {cam}]({name})", ""]

    lines += ["## Overlays around decision changes", ""]
    if not collector.groups:
        lines += ["No decision changed during the replay.", ""]
    for cam in by_cam:
        groups = [g for g in collector.groups if g.camera == cam]
        if not groups:
            continue
        tiles = [t for g in groups for t in g.tiles]
        caps = [c for g in groups for c in g.captions]
        per_row = max(len(g.tiles) for g in groups)
        name = f"changes_{_slug(cam)}.jpg"
        sheet = contact_sheet(tiles, columns=per_row, tile_width=320, captions=caps)
        cv2.imwrite(str(out / name), sheet, [cv2.IMWRITE_JPEG_QUALITY, 85])
        total = collector.changes.get(cam, 0)
        shown = len(groups)
        note = f" (first {shown} of {total} shown)" if total > shown else ""
        lines += [
            f"### `{cam}`: {total} change(s){note}",
            "",
            "One row per change: frames before, the first frame with the new decision "
            "(white border) and frames after.",
            "",
            *[f"- t={(g.stamp_ns - t0) / 1e9:.2f} s: {g.before} -> {g.after}" for g in groups],
            "",
            f"![changes {cam}]({name})",
            "",
        ]

    lat = np.array([r.latency_ms for r in records], dtype=np.float64)
    cv2.imwrite(
        str(out / "latency.png"),
        histogram_image(lat, "per-frame latency (decode + pipeline + smoothing)", "ms"),
    )
    lines += ["## Latency", "", "![latency histogram](latency.png)", ""]
    if lat.size:
        lines += [
            f"mean {lat.mean():.2f} ms, p50 {np.percentile(lat, 50):.2f} ms, "
            f"p95 {np.percentile(lat, 95):.2f} ms, max {lat.max():.2f} ms",
            "",
        ]
    (out / "report.md").write_text("\n".join(lines))
    (out / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    _write_frames_csv(out / "frames.csv", records, classes)
    return out


def _counts_table(by_cam: dict[str, list[FrameRecord]], classes: list[str]) -> str:
    head = "| camera | " + " | ".join(f"{c} (raw)" for c in classes) + " |"
    rows = [head, "|---|" + "---|" * len(classes)]
    for cam, recs in by_cam.items():
        dec = np.bincount([r.decision for r in recs], minlength=len(classes))
        raw = np.bincount([r.raw_decision for r in recs], minlength=len(classes))
        rows.append(
            f"| `{cam}` | " + " | ".join(f"{d} ({w})" for d, w in zip(dec, raw, strict=True)) + " |"
        )
    return "\n".join(rows)


def _timeline(
    cam: str, recs: list[FrameRecord], classes: list[str], t0: int, has_truth: bool
) -> np.ndarray:
    times = np.array([(r.stamp_ns - t0) / 1e9 for r in recs])
    truth = (
        np.array([classes.index(r.truth) if r.truth in classes else -1 for r in recs])
        if has_truth
        else None
    )
    return timeline_image(
        times,
        np.array([r.probabilities for r in recs], dtype=np.float64).reshape(len(recs), -1),
        np.array([r.smoothed for r in recs], dtype=np.float64).reshape(len(recs), -1),
        np.array([r.decision for r in recs]),
        np.array([r.raw_decision for r in recs]),
        classes,
        truth,
        title=f"{cam}: decision timeline",
    )


def _write_frames_csv(path: Path, records: Sequence[FrameRecord], classes: list[str]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["camera", "frame_id", "stamp_ns", "decision", "raw_decision", "truth", "latency_ms"]
            + [f"p_{c}" for c in classes]
            + [f"smoothed_{c}" for c in classes]
        )
        for r in records:
            w.writerow(
                [r.camera, r.frame_id, r.stamp_ns, classes[r.decision], classes[r.raw_decision]]
                + [r.truth or "", r.latency_ms, *r.probabilities, *r.smoothed]
            )
