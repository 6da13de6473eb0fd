"""``gapcam compare``: two models over the same bags, and where (and why) they decide differently.

Both models are replayed by the fleet machinery into ``OUT/a/`` and ``OUT/b/`` (each a complete
fleet output, resumable), so every number here comes from real replays of the same frames. The
comparison then pairs frames by camera and header stamp from the two replays' ``frames.csv`` and
reads the CAM overlays of disagreeing frames back from the two output bags.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gapcam.fleet.driver import FleetRun, plan, run_tasks
from gapcam.fleet.inputs import BagInput
from gapcam.fleet.layout import TaskDir
from gapcam.fleet.models import ModelSource
from gapcam.fleet.summary import write_fleet_report
from gapcam.fleet.task import FAILED
from gapcam.replay import bag_io
from gapcam.replay.replay import ReplayOptions

KEYS = ("a", "b")
REPORT_MD = "compare_report.md"
SUMMARY_JSON = "compare_summary.json"


@dataclass
class Frame:
    """One replayed frame as ``frames.csv`` records it."""

    decision: str
    raw: str
    truth: str | None
    confidence: float


@dataclass
class BagComparison:
    """Frame-by-frame comparison of the two replays of one bag."""

    name: str
    frames: int = 0
    agree_published: int = 0
    agree_raw: int = 0
    labelled: int = 0
    correct: dict[str, int] = field(default_factory=lambda: {k: 0 for k in KEYS})
    correct_raw: dict[str, int] = field(default_factory=lambda: {k: 0 for k in KEYS})
    #: (camera, stamp_ns, frame A, frame B) where published or raw decisions differ
    disagreements: list[tuple[str, int, Frame, Frame]] = field(default_factory=list)
    timelines: list[str] = field(default_factory=list)
    sheet: str | None = None
    status: str = "ok"
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        n, lab = self.frames, self.labelled
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "frames": n,
            "agreement_published": round(self.agree_published / n, 4) if n else None,
            "agreement_raw": round(self.agree_raw / n, 4) if n else None,
            "disagreeing_frames": len(self.disagreements),
            "labelled_frames": lab,
            "accuracy": {k: round(self.correct[k] / lab, 4) if lab else None for k in KEYS},
            "accuracy_raw": {k: round(self.correct_raw[k] / lab, 4) if lab else None for k in KEYS},
            "timelines": self.timelines,
            "disagreement_sheet": self.sheet,
        }


def read_frames(report_dir: Path) -> dict[tuple[str, int], Frame]:
    """(camera, header stamp) -> frame, from a replay report's ``frames.csv``."""
    out: dict[tuple[str, int], Frame] = {}
    with (report_dir / "frames.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            raw = row["raw_decision"]
            out[(row["camera"], int(row["stamp_ns"]))] = Frame(
                row["decision"], raw, row["truth"] or None, float(row.get(f"p_{raw}") or 0.0)
            )
    return out


def compare_bag(name: str, a: TaskDir, b: TaskDir) -> tuple[BagComparison, dict]:
    """Pair the frames of the two replays of one bag; returns the comparison and the pairs."""
    fa, fb = read_frames(a.report_dir), read_frames(b.report_dir)
    cmp = BagComparison(name)
    pairs = {k: (fa[k], fb[k]) for k in sorted(fa.keys() & fb.keys(), key=lambda k: (k[0], k[1]))}
    for (camera, stamp), (x, y) in pairs.items():
        cmp.frames += 1
        cmp.agree_published += x.decision == y.decision
        cmp.agree_raw += x.raw == y.raw
        truth = x.truth or y.truth
        if truth is not None:
            cmp.labelled += 1
            for k, f in zip(KEYS, (x, y), strict=True):
                cmp.correct[k] += f.decision == truth
                cmp.correct_raw[k] += f.raw == truth
        if x.decision != y.decision or x.raw != y.raw:
            cmp.disagreements.append((camera, stamp, x, y))
    unmatched = len(fa.keys() ^ fb.keys())
    if unmatched:
        cmp.reason = f"{unmatched} frame(s) replayed by only one model (not compared)"
    return cmp, pairs


def _overlays(task: TaskDir, wanted: dict[str, set[int]]) -> dict[tuple[str, int], np.ndarray]:
    """Decoded CAM overlays of the wanted (camera, stamp) frames from a replay's output bag."""
    cams = json.loads((task.report_dir / "summary.json").read_text())["cameras"]
    topics = {info["overlay_topic"]: cam for cam, info in cams.items() if info.get("overlay_topic")}
    reader = bag_io.open_reader(task.output_bag)
    out: dict[tuple[str, int], np.ndarray] = {}
    try:
        conns = [c for c in reader.connections if c.topic in topics]
        store = bag_io.typestore()
        for conn, ts, raw in reader.messages(connections=conns):
            cam = topics[conn.topic]
            if ts in wanted.get(cam, ()):
                msg = store.deserialize_cdr(raw, conn.msgtype)
                img = cv2.imdecode(np.asarray(msg.data, np.uint8), cv2.IMREAD_COLOR)
                if img is not None:
                    out[(cam, ts)] = img
    finally:
        reader.close()
    return out


def _slug(s: str) -> str:
    return s.strip("/").replace("/", "_") or "camera"


def write_images(
    cmp: BagComparison,
    pairs: dict,
    a: TaskDir,
    b: TaskDir,
    out_dir: Path,
    classes: list[str],
    max_frames: int,
) -> None:
    """Timelines of both models per camera, and the disagreement sheet (published first)."""
    from gapcam.fleet.compare_plots import compare_timeline, disagreement_sheet

    out_dir.mkdir(parents=True, exist_ok=True)
    by_cam: dict[str, list[tuple[int, Frame, Frame]]] = {}
    for (camera, stamp), (x, y) in pairs.items():
        by_cam.setdefault(camera, []).append((stamp, x, y))
    t0 = min((s for rows in by_cam.values() for s, _, _ in rows), default=0)
    for camera, rows in by_cam.items():
        times = np.array([(s - t0) / 1e9 for s, _, _ in rows])
        bands = []
        if any(x.truth for _, x, _ in rows):
            bands.append(("truth", [x.truth for _, x, _ in rows]))
        bands += [
            ("A published", [x.decision for _, x, _ in rows]),
            ("B published", [y.decision for _, _, y in rows]),
            ("A raw", [x.raw for _, x, _ in rows]),
            ("B raw", [y.raw for _, _, y in rows]),
        ]
        name = f"{cmp.name}_timeline_{_slug(camera)}.png"
        title = f"{cmp.name} {camera}: A vs B"
        cv2.imwrite(str(out_dir / name), compare_timeline(times, bands, classes, title))
        cmp.timelines.append(name)
    if not cmp.disagreements:
        return
    chosen = sorted(cmp.disagreements, key=lambda d: (d[2].decision == d[3].decision, d[1]))
    chosen = chosen[:max_frames]
    wanted: dict[str, set[int]] = {}
    for camera, stamp, _, _ in chosen:
        wanted.setdefault(camera, set()).add(stamp)
    ova, ovb = _overlays(a, wanted), _overlays(b, wanted)
    images, captions = [], []
    for camera, stamp, x, y in sorted(chosen, key=lambda d: (d[0], d[1])):
        if (camera, stamp) in ova and (camera, stamp) in ovb:
            t = (stamp - t0) / 1e9
            images.append((ova[(camera, stamp)], ovb[(camera, stamp)]))
            captions.append(
                (f"A {camera.strip('/').split('/')[0]} t={t:.2f}s {x.decision} (raw {x.raw})",
                 f"B t={t:.2f}s {y.decision} (raw {y.raw})")
            )  # fmt: skip
    if images:
        name = f"{cmp.name}_disagreements.jpg"
        cv2.imwrite(str(out_dir / name), disagreement_sheet(images, captions))
        cmp.sheet = name


def run_compare(
    bags: list[BagInput],
    out_root: str | Path,
    model_a: ModelSource,
    model_b: ModelSource,
    options: ReplayOptions,
    runner: Any,
    *,
    force: bool = False,
    progress: bool = True,
    max_frames: int = 24,
) -> dict[str, Any]:
    """Replay every bag with both models, compare them, write the report; returns the summary."""
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    models = {"a": model_a, "b": model_b}
    work = {}
    for k in KEYS:
        todo, reused = plan(bags, out_root / k, k, models[k], force)
        work[k] = (todo, reused, len(bags))
    results, interrupted, wall = run_tasks(work, models, options, runner, progress)
    for k in KEYS:
        run = FleetRun(
            results[k], round(wall, 3), runner.describe(), interrupted, {k: str(models[k].path)}
        )
        write_fleet_report(run, out_root / k)
    img_dir = out_root / "compare"
    comparisons = []
    classes: list[str] = []
    for i, bag in enumerate(bags):
        ra, rb = results["a"][i], results["b"][i]
        if ra["status"] != "ok" or rb["status"] != "ok":
            bad = ra if ra["status"] != "ok" else rb
            comparisons.append(
                BagComparison(
                    bag.name,
                    status=bad["status"],
                    reason=f"model {bad['model_key'].upper()}: {bad['reason']}",
                )
            )
            continue
        ta, tb = TaskDir(out_root / "a" / bag.name), TaskDir(out_root / "b" / bag.name)
        cmp, pairs = compare_bag(bag.name, ta, tb)
        if not classes:
            classes = _classes(ta)
        write_images(cmp, pairs, ta, tb, img_dir, classes, max_frames)
        comparisons.append(cmp)
    summary = _summary(comparisons, results, models, wall, interrupted, runner.describe())
    (out_root / SUMMARY_JSON).write_text(json.dumps(summary, indent=2) + "\n")
    (out_root / REPORT_MD).write_text(_markdown(summary, comparisons, out_root, img_dir))
    return summary


def _classes(task: TaskDir) -> list[str]:
    with (task.report_dir / "frames.csv").open(newline="") as f:
        head = next(csv.reader(f))
    return [h[2:] for h in head if h.startswith("p_")]


def _summary(
    comparisons: list[BagComparison],
    results: dict[str, list[dict[str, Any]]],
    models: dict[str, ModelSource],
    wall: float,
    interrupted: bool,
    runner: str,
) -> dict[str, Any]:
    ok = [c for c in comparisons if c.status == "ok"]
    n = sum(c.frames for c in ok)
    lab = sum(c.labelled for c in ok)

    def acc(attr: str, k: str) -> float | None:
        return round(sum(getattr(c, attr)[k] for c in ok) / lab, 4) if lab else None

    ids = {k: next((r["model_id"] for r in results[k] if r.get("model_id")), None) for k in KEYS}
    return {
        "models": {k: {"path": str(models[k].path), "model_id": ids[k]} for k in KEYS},
        "runner": runner,
        "wall_s": round(wall, 3),
        "interrupted": interrupted,
        "bags": len(comparisons),
        "bags_compared": len(ok),
        "bags_failed": sum(
            any(results[k][i]["status"] in FAILED for k in KEYS) for i in range(len(comparisons))
        ),
        "frames": n,
        "agreement_published": round(sum(c.agree_published for c in ok) / n, 4) if n else None,
        "agreement_raw": round(sum(c.agree_raw for c in ok) / n, 4) if n else None,
        "disagreeing_frames": sum(len(c.disagreements) for c in ok),
        "labelled_frames": lab,
        "accuracy": {k: acc("correct", k) for k in KEYS},
        "accuracy_raw": {k: acc("correct_raw", k) for k in KEYS},
        "per_bag": sorted(
            (c.to_dict() for c in comparisons),
            key=lambda d: (d["status"] == "ok", d["agreement_published"] or 0.0, d["name"]),
        ),
    }


def _f(v: Any, spec: str = ".4f") -> str:
    return "-" if v is None else format(v, spec)


def _markdown(
    s: dict[str, Any], comparisons: list[BagComparison], root: Path, img_dir: Path
) -> str:
    rel = os.path.relpath(img_dir, root)
    lines = [
        "# Model comparison",
        "",
        f"- A: `{s['models']['a']['model_id']}` ({s['models']['a']['path']})",
        f"- B: `{s['models']['b']['model_id']}` ({s['models']['b']['path']})",
        f"- {s['bags_compared']} of {s['bags']} bags compared, {s['frames']} frames "
        f"(same camera and header stamp in both replays); runner: {s['runner']}"
        + ("; **interrupted**" if s["interrupted"] else ""),
        "",
        "| | published (smoothed) decision | raw per-frame decision |",
        "|---|---|---|",
        f"| agreement A vs B | **{_f(s['agreement_published'])}** | **{_f(s['agreement_raw'])}** |",
        f"| accuracy A ({s['labelled_frames']} labelled frames) | {_f(s['accuracy']['a'])} | {_f(s['accuracy_raw']['a'])} |",
        f"| accuracy B | {_f(s['accuracy']['b'])} | {_f(s['accuracy_raw']['b'])} |",
        "",
        f"{s['disagreeing_frames']} frame(s) where the published or the raw decisions differ. "
        "Each model's own fleet report: [A](a/fleet_report.md), [B](b/fleet_report.md).",
        "",
        "## Bags, least agreement first",
        "",
        "| bag | status | frames | agreement published | agreement raw | accuracy A / B | disagreeing frames |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in s["per_bag"]:
        status = d["status"] if d["status"] == "ok" else f"{d['status']}: {d['reason']}"
        lines.append(
            f"| `{d['name']}` | {status} | {d['frames']} | {_f(d['agreement_published'])} | "
            f"{_f(d['agreement_raw'])} | {_f(d['accuracy']['a'])} / {_f(d['accuracy']['b'])} | "
            f"{d['disagreeing_frames']} |"
        )
    for c in comparisons:
        if c.status != "ok":
            continue
        lines += ["", f"## `{c.name}`", ""]
        if c.reason:
            lines += [f"Note: {c.reason}.", ""]
        lines += [f"![timeline {t}]({rel}/{t})" for t in c.timelines]
        if c.sheet:
            lines += [
                "",
                f"Frames where the models disagree ({len(c.disagreements)}; published "
                "disagreements first, at most a sheet's worth): model A's CAM overlay left, "
                "model B's right.",
                "",
                f"![disagreements]({rel}/{c.sheet})",
            ]
        else:
            lines += ["", "The two models agree on every frame of this bag."]
    lines.append("")
    return "\n".join(lines)
