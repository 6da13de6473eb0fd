"""Few-shot table: pretrained EfficientNet-Lite0 against the from-scratch small network.

For each training-set size (default 200, 500, 2000 labelled synthetic images, class-balanced
subsets of one seed-0 set), trains both networks with the same seed and evaluates them on the
same held-out synthetic images (seed 1): accuracy, ``cam_pointing`` and training wall time.
Prints a Markdown table (the README's) and writes ``few_shot.json``.

    python -m gapcam.training.few_shot --work runs/few_shot [--sizes 200 500 2000]

Data sets are generated on first use (or reused from ``make model``'s ``--train``/``--heldout``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from gapcam.dataset import LABELS_FILE, scan_folder
from gapcam.evaluate import evaluate
from gapcam.synth import generate_dataset
from gapcam.training.architectures import default_input
from gapcam.training.export import export_onnx
from gapcam.training.train import TrainConfig, train

#: (label, arch, pretrained, trainable blocks, input size, epochs, lr)
SETUPS = (
    ("small, from scratch", "small", False, None, 128, 8, 3e-3),
    ("EfficientNet-Lite0, pretrained", "efficientnet_lite0", True, 0, 160, 5, 3e-3),
)


def subset(src: Path, dst: Path, n: int) -> Path:
    """The first ``n`` images of ``src`` (class-balanced: the generator's plan is balanced and
    shuffled), as symlinks with their ``labels.jsonl`` records."""
    if (dst / LABELS_FILE).exists():
        return dst
    folder = scan_folder(src)
    recs = {}
    for line in (src / LABELS_FILE).read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            recs[r["index"]] = r
    chosen = sorted(recs.values(), key=lambda r: r["index"])[:n]
    for c in folder.classes:
        (dst / c).mkdir(parents=True, exist_ok=True)
    with (dst / LABELS_FILE).open("w") as f:
        for r in chosen:
            os.symlink((src / r["file"]).resolve(), dst / r["file"])
            f.write(json.dumps(r) + "\n")
    return dst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="runs/few_shot")
    p.add_argument(
        "--train", default="runs/model/train", help="seed-0 synthetic set (made if missing)"
    )
    p.add_argument("--heldout", default="runs/model/heldout", help="seed-1 set (made if missing)")
    p.add_argument("--sizes", type=int, nargs="+", default=[200, 500, 2000])
    p.add_argument("--heldout-images", type=int, default=600)
    p.add_argument(
        "--epochs",
        type=int,
        help="epochs for both networks (default: 8 small, 5 EfficientNet-Lite0)",
    )
    a = p.parse_args(argv)
    work = Path(a.work)
    src, held = Path(a.train), Path(a.heldout)
    if not (src / LABELS_FILE).exists():
        generate_dataset(src, max(a.sizes), seed=0, size=(224, 224))
    if not (held / LABELS_FILE).exists():
        generate_dataset(held, a.heldout_images, seed=1, size=(224, 224))
    held_sub = subset(held, work / "heldout", a.heldout_images)
    rows = []
    for n in a.sizes:
        data = subset(src, work / f"train_{n}", n)
        for label, arch, pretrained, blocks, size, epochs, lr in SETUPS:
            tag = f"{arch}_{n}"
            spec = dataclasses.replace(default_input(arch, pretrained), width=size, height=size)
            epochs = a.epochs or epochs
            cfg = TrainConfig(
                epochs=epochs,
                lr=lr,
                batch_size=32,
                arch=arch,
                pretrained=pretrained,
                trainable_blocks=blocks,
            )
            t0 = time.time()
            train(data, work / f"{tag}.pt", cfg, spec, fallback_class="undefined")
            t_train = time.time() - t0
            export_onnx(work / f"{tag}.pt", work / f"{tag}.onnx")
            m = evaluate(held_sub, work / f"{tag}.onnx", work / f"eval_{tag}", sheet_size=12)
            rows.append(
                {
                    "images": n,
                    "model": label,
                    "accuracy": m["accuracy"],
                    "cam_pointing": m["cam_pointing"],
                    "train_s": round(t_train, 1),
                    "epochs": epochs,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    (work / "few_shot.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(
        "\n| labelled images | model | held-out accuracy | cam_pointing | training time (2 cores) |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['images']} | {r['model']} | {r['accuracy']:.3f} | {r['cam_pointing']:.3f} | "
            f"{r['train_s']:.0f} s |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
