"""``fleet_summary.json`` and ``fleet_report.md``: one row per bag, worst first, and totals.

"Worst" is what a reviewer should open first: bags that failed, then the lowest accuracy against
ground truth, then the most decision changes per camera-minute (flicker is what a driver feels).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2

from gapcam.fleet.layout import OVERVIEW_PNG, REPORT_MD, SUMMARY_JSON
from gapcam.fleet.overview import overview_image
from gapcam.fleet.task import FAILED, INTERRUPTED

if TYPE_CHECKING:
    from gapcam.fleet.driver import FleetRun


def worst_first(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(r: dict[str, Any]) -> tuple:
        rank = 0 if r["status"] in FAILED else 1 if r["status"] == INTERRUPTED else 2
        acc = r.get("accuracy")
        cpm = r.get("changes_per_min")
        return (rank, 2.0 if acc is None else acc, -(cpm or 0.0), r["name"])

    return sorted(results, key=key)


def totals(results: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """Fleet totals; ``replayed_fps`` counts only frames replayed by this run (not reused)."""
    fresh = [r for r in results if not r.get("reused")]
    frames_now = sum(r.get("frames") or 0 for r in fresh if r["status"] == "ok")
    labelled = [
        (r["accuracy"], r.get("labelled_frames") or 0)
        for r in results
        if r.get("accuracy") is not None
    ]
    n_lab = sum(n for _, n in labelled)
    recorded = sum(r.get("recorded_s") or 0.0 for r in results)
    cam_min = sum((r.get("recorded_s") or 0.0) * (r.get("cameras") or 0) for r in results) / 60
    changes = sum(r.get("decision_changes") or 0 for r in results)
    return {
        "bags": len(results),
        "ok": sum(r["status"] == "ok" for r in results),
        "reused": sum(bool(r.get("reused")) for r in results),
        "failed": sum(r["status"] in FAILED for r in results),
        "interrupted": sum(r["status"] == INTERRUPTED for r in results),
        "frames": sum(r.get("frames") or 0 for r in results),
        "recorded_s": round(recorded, 3),
        "wall_s": round(wall_s, 3),
        "replayed_frames": frames_now,
        "replayed_fps": round(frames_now / wall_s, 2) if wall_s > 0 else None,
        "accuracy": round(sum(a * n for a, n in labelled) / n_lab, 4) if n_lab else None,
        "labelled_frames": n_lab,
        "decision_changes": changes,
        "changes_per_min": round(changes / cam_min, 3) if cam_min > 0 else None,
    }


def _fmt(v: Any, spec: str = "") -> str:
    return "-" if v is None else format(v, spec)


def _link(path: str | None, root: Path) -> str:
    if not path:
        return "-"
    rel = os.path.relpath(path, root)
    return f"[report]({rel})"


def write_fleet_report(run: FleetRun, out_root: Path) -> tuple[Path, Path]:
    """Write both files into ``out_root``; returns their paths."""
    rows = worst_first(run.results)
    tot = totals(run.results, run.wall_s)
    data = {
        "runner": run.runner,
        "interrupted": run.interrupted,
        "models": run.models,
        "model_ids": sorted({r["model_id"] for r in run.results if r.get("model_id")}),
        "totals": tot,
        "bags": rows,
    }
    js = out_root / SUMMARY_JSON
    js.write_text(json.dumps(data, indent=2) + "\n")
    lines = [
        "# Fleet replay report",
        "",
        f"- model: `{', '.join(data['model_ids']) or '-'}` ({', '.join(run.models.values())})",
        f"- runner: {run.runner}; wall time {run.wall_s:.1f} s"
        + ("; **interrupted (Ctrl-C)**" if run.interrupted else ""),
        f"- bags: {tot['bags']} ({tot['ok']} ok, {tot['reused']} of them from an earlier run; "
        f"**{tot['failed']} failed**, {tot['interrupted']} interrupted)",
        f"- frames: {tot['frames']} over {tot['recorded_s'] / 60:.1f} min recorded; "
        f"this run replayed {tot['replayed_frames']} at {_fmt(tot['replayed_fps'], '.1f')} frames/s",
        f"- accuracy against ground truth: {_fmt(tot['accuracy'], '.4f')} "
        f"({tot['labelled_frames']} labelled frames)",
        f"- decision changes: {tot['decision_changes']} "
        f"({_fmt(tot['changes_per_min'], '.2f')} per camera-minute)",
        "",
        "## Bags, worst first",
        "",
        "Failed bags first, then lowest accuracy, then most decision changes per camera-minute.",
        "",
        f"![fleet overview]({OVERVIEW_PNG})",
        "",
        "| bag | status | frames | recorded s | accuracy | changes/min | latency mean / p95 ms | replay frames/s | report |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        status = r["status"] + (" (earlier run)" if r.get("reused") else "")
        if r.get("attempts", 1) > 1:
            status += f", {r['attempts']} attempts"
        lines.append(
            f"| `{r['name']}` | {status} | {r.get('frames', 0)} | {_fmt(r.get('recorded_s'), '.1f')} | "
            f"{_fmt(r.get('accuracy'), '.4f')} | {_fmt(r.get('changes_per_min'), '.2f')} | "
            f"{_fmt(r.get('latency_mean_ms'), '.1f')} / {_fmt(r.get('latency_p95_ms'), '.1f')} | "
            f"{_fmt(r.get('replay_fps'), '.1f')} | {_link(r.get('report'), out_root)} |"
        )
    problems = [r for r in rows if r["status"] != "ok"]
    if problems:
        lines += ["", "## Bags not replayed completely", ""]
        lines += [
            f"- `{r['name']}` ({r['input']}): **{r['status']}**: {r['reason']}" for r in problems
        ]
    lines.append("")
    md = out_root / REPORT_MD
    cv2.imwrite(str(out_root / OVERVIEW_PNG), overview_image(rows))
    md.write_text("\n".join(lines))
    return js, md
