"""``make demo``: the main job on the embedded default (ONNX Runtime on CPU, shipped model).

1. Render sample rear-side camera frames (both cameras, every class, 1280x720) with the
   synthetic generator, and classify them with the shipped model: CAM overlays,
   ``predictions.jsonl`` and a contact sheet.
2. Replay a sample rosbag through the node's pipeline (when the replay package is installed):
   output bag + report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2

from gapcam.errors import GapcamError
from gapcam.labels import LANE_CHANGE_CLASSES
from gapcam.overlay import contact_sheet
from gapcam.predict import predict
from gapcam.replay.demo_job import run_demo
from gapcam.shipped import default_model


def make_samples(
    out_dir: Path, per_class: int = 2, size: tuple[int, int] = (1280, 720)
) -> list[Path]:
    """Render ``per_class`` frames per class and camera side; the ground truth goes to
    ``samples/labels.jsonl`` so a reader can compare."""
    from gapcam.synth import render_scene

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    with (out_dir / "labels.jsonl").open("w") as f:
        seed = 1000
        for label in LANE_CHANGE_CLASSES:
            for side in ("left", "right"):
                for _ in range(per_class):
                    image, meta = render_scene(seed, size=size, side=side, label=label)
                    path = out_dir / f"{label}_{side}_{seed}.jpg"
                    cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
                    f.write(json.dumps({"file": path.name, **meta}) + "\n")
                    paths.append(path)
                    seed += 1
    return paths


def run(out: Path, model: Path) -> int:
    samples = make_samples(out / "samples")
    pred_dir = out / "predict"
    written, failed = predict([out / "samples"], model, pred_dir)
    records = [json.loads(x) for x in (pred_dir / "predictions.jsonl").read_text().splitlines()]
    truth = {Path(s).name.split("_")[0] for s in samples}
    correct = sum(Path(r["image"]).name.split("_")[0] == r["decision"] for r in records)
    overlays = [cv2.imread(str(pred_dir / r["overlay"])) for r in records]
    captions = [f"{Path(r['image']).name.split('_')[0]} -> {r['decision']}" for r in records]
    cv2.imwrite(
        str(out / "predict_sheet.jpg"),
        contact_sheet(overlays, columns=4, tile_width=400, captions=captions),
    )
    print(
        f"[demo] classified {written} sample frames ({', '.join(sorted(truth))}): {correct}/{written} match the generator's label"
    )
    print(f"[demo] overlays + predictions.jsonl: {pred_dir}")
    print(f"[demo] contact sheet: {out / 'predict_sheet.jpg'}")
    run_demo(out / "replay", model=model)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run the gapcam demo on the shipped model (CPU).")
    p.add_argument("--out", default="out/demo")
    p.add_argument("--model", default=str(default_model()))
    a = p.parse_args(argv)
    try:
        return run(Path(a.out), Path(a.model))
    except GapcamError as exc:
        print(f"gapcam demo: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
