"""Reproduce the shipped model from scratch: ``make model`` runs this.

1. generate the synthetic training set (seed 0) and a held-out set with another seed (1);
2. train (seeded) and export to ONNX with the fused CAM head and its self-checks;
3. evaluate on the held-out set and record the figures in the model card (the ONNX bytes, and
   so its sha256, are unchanged by that).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from gapcam.evaluate import evaluate
from gapcam.model_card import ModelCard, card_path_for
from gapcam.synth import generate_dataset
from gapcam.training.export import export_onnx
from gapcam.training.train import TrainConfig, train


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="models/lane_change.onnx")
    p.add_argument("--work", default="runs/model", help="data sets, checkpoint and reports")
    p.add_argument("--train-images", type=int, default=8000)
    p.add_argument("--heldout-images", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    work = Path(a.work)
    t0 = time.time()
    train_dir, heldout_dir = work / "train", work / "heldout"
    if not (train_dir / "labels.jsonl").exists():
        generate_dataset(train_dir, a.train_images, seed=a.seed, size=(224, 224))
    if not (heldout_dir / "labels.jsonl").exists():
        generate_dataset(heldout_dir, a.heldout_images, seed=a.seed + 1, size=(224, 224))
    t_data = time.time() - t0
    ckpt = work / "lane_change.pt"
    report = train(train_dir, ckpt, TrainConfig(epochs=a.epochs, seed=a.seed))
    export_onnx(ckpt, a.out)
    metrics = evaluate(heldout_dir, a.out, work / "heldout_eval")
    card_file = card_path_for(a.out)
    card = ModelCard.load(card_file)
    summary = {
        "val_accuracy": report["val_accuracy"],
        "heldout_seed": a.seed + 1,
        "heldout_images": metrics["images"],
        "heldout_accuracy": metrics["accuracy"],
        "heldout_per_class": metrics["per_class"],
        "heldout_confusion_matrix": metrics["confusion_matrix"],
        "cam_pointing": metrics["cam_pointing"],
        "cam_iou50": metrics["cam_iou50"],
        "cam_mean_iou": metrics["cam_mean_iou"],
    }
    dataclasses.replace(card, metrics=summary).save(card_file)
    timing = {
        "data_s": round(t_data, 1),
        "train_s": report["wall_time_s"],
        "total_s": round(time.time() - t0, 1),
    }
    (work / "timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    print(json.dumps({**summary, **timing}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
