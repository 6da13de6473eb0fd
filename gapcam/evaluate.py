"""Accuracy and CAM localisation of a model on a labelled folder (``gapcam evaluate``).

Localisation is scored on the images of one class (``--loc-class``, by default the card's
``localisation_class``: ``blocked`` for the shipped model) that carry a ground-truth box
(``box`` or, from the synthetic generator, ``blocking_box`` in ``labels.jsonl``), using that
class's CAM whatever the prediction (the usual "ground-truth-known" protocol of weakly
supervised localisation):

* ``cam_pointing``: share of images where the CAM maximum lies inside the box;
* ``cam_iou50``: share where the CAM box (largest component above the model's threshold: its
  card's ``cam_threshold``, 20% of the maximum without one, or ``cam_threshold``) has IoU >= 0.5
  with it.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from gapcam.backends import load_backend
from gapcam.cam import PREDICTED, box_iou, cam_peak
from gapcam.charts import confusion_matrix_image
from gapcam.dataset import scan_folder
from gapcam.errors import GapcamError
from gapcam.imageio import read_image
from gapcam.overlay import contact_sheet
from gapcam.pipeline import Pipeline


def evaluate(
    data_dir: str | Path,
    model: str | Path,
    out_dir: str | Path,
    *,
    backend: str = "auto",
    sheet_size: int = 24,
    progress: bool = True,
    cam_threshold: float | None = None,
    loc_class: str | None = None,
) -> dict:
    """Run the model over ``data_dir`` and write ``metrics.json``, ``confusion_matrix.png`` and
    ``overlays.png`` (a contact sheet, errors first) into ``out_dir``. Returns the metrics."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runtime = load_backend(model, backend)
    if loc_class is None:
        loc_class = runtime.card.localisation_class
    elif loc_class == "none":
        loc_class = None
    if loc_class is not None and loc_class not in runtime.card.classes:
        raise GapcamError(
            f"--loc-class {loc_class!r} is not one of the model's classes "
            f"{list(runtime.card.classes)[:8]}; pick one or 'none'"
        )
    pipe = Pipeline(runtime, cam_threshold=cam_threshold, cam_class=loc_class or PREDICTED)
    folder = scan_folder(data_dir, pipe.classes)
    n_cls = len(pipe.classes)
    confusion = np.zeros((n_cls, n_cls), dtype=np.int64)
    pointing, iou50, ious = [], [], []
    sheet: list[tuple[bool, np.ndarray, str]] = []
    for s in tqdm(folder.samples, desc="evaluate", disable=not progress, unit="img"):
        image = read_image(s.path)
        r = pipe.analyze(image)
        true = pipe.classes.index(s.label)
        confusion[true, r.class_index] += 1
        gt = s.meta.get("box") or s.meta.get("blocking_box")
        if loc_class and s.label == loc_class and gt:
            h, w = image.shape[:2]
            px, py = cam_peak(r.cam, (w, h))
            pointing.append(gt[0] <= px < gt[2] and gt[1] <= py < gt[3])
            iou = box_iou(r.box, gt)
            ious.append(iou)
            iou50.append(iou >= 0.5)
        wrong = r.class_index != true
        if len(sheet) < 4 * sheet_size or wrong:
            ov = pipe.render(image, r)
            if gt:  # ground truth in white, the CAM box in the decision colour
                cv2.rectangle(ov, (gt[0], gt[1]), (gt[2] - 1, gt[3] - 1), (255, 255, 255), 1)
            sheet.append((wrong, ov, f"{s.label} -> {r.raw_decision} {r.confidence:.2f}"))

    total = int(confusion.sum())
    per_class = {}
    for i, c in enumerate(pipe.classes):
        tp = int(confusion[i, i])
        predicted = int(confusion[:, i].sum())
        actual = int(confusion[i, :].sum())
        per_class[c] = {
            "precision": tp / predicted if predicted else None,
            "recall": tp / actual if actual else None,
            "support": actual,
        }
    metrics = {
        "model": str(model),
        "model_id": pipe.backend.model_id,
        "data": str(data_dir),
        "images": total,
        "accuracy": float(np.trace(confusion) / max(1, total)),
        "per_class": per_class,
        "classes": list(pipe.classes),
        "confusion_matrix": confusion.tolist(),
        "cam_localisation_class": loc_class,
        "cam_images": len(pointing),
        "cam_pointing": float(np.mean(pointing)) if pointing else None,
        "cam_iou50": float(np.mean(iou50)) if iou50 else None,
        "cam_mean_iou": float(np.mean(ious)) if ious else None,
        "cam_threshold": pipe.cam_threshold,
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    cv2.imwrite(
        str(out_dir / "confusion_matrix.png"),
        confusion_matrix_image(
            confusion, pipe.classes, f"{Path(model).name} on {Path(data_dir).name}"
        ),
    )
    # Mistakes first (they are what a reviewer wants to see), then correct examples.
    sheet.sort(key=lambda t: not t[0])
    chosen = sheet[:sheet_size]
    if chosen:
        cv2.imwrite(
            str(out_dir / "overlays.png"),
            contact_sheet(
                [t[1] for t in chosen], columns=6, tile_width=224, captions=[t[2] for t in chosen]
            ),
        )
    return metrics
