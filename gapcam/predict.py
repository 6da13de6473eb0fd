"""``gapcam predict``: overlays and a predictions file for images on disk."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2

from gapcam.cam import PREDICTED
from gapcam.errors import GapcamError
from gapcam.imageio import DEFAULT_MAX_PIXELS, list_images, read_image
from gapcam.node_settings import DEFAULT_OVERLAY
from gapcam.pipeline import Pipeline


def predict(
    inputs: list[str | Path],
    model: str | Path,
    out_dir: str | Path,
    *,
    backend: str = "auto",
    cam_class: str = PREDICTED,
    alpha: float = DEFAULT_OVERLAY.alpha,
    cam_threshold: float | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[int, int]:
    """Write ``<stem>_cam.png`` per image and ``predictions.jsonl``; returns (written, failed).

    ``cam_threshold`` ``None``: the model card's (chosen at export; 0.2 when it has none).

    An unreadable image is reported on stderr (one line) and skipped, so one corrupt file in a
    folder does not cost the results of all the others; the caller exits non-zero if any failed.
    Images whose header claims more than ``max_pixels`` are refused before decoding.
    """
    files = list_images([Path(p) for p in inputs])
    pipe = Pipeline.from_model(model, backend, cam_class=cam_class, cam_threshold=cam_threshold)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = failed = 0
    used: set[str] = set()
    with (out_dir / "predictions.jsonl").open("w") as f:
        for path in files:
            try:
                image = read_image(path, max_pixels=max_pixels)
            except GapcamError as exc:
                print(f"gapcam: skipped: {exc}", file=sys.stderr)
                failed += 1
                continue
            r = pipe.analyze(image)
            name = f"{path.stem}_cam.png"
            k = 1
            while name in used:
                k += 1
                name = f"{path.stem}_{k}_cam.png"
            used.add(name)
            cv2.imwrite(str(out_dir / name), pipe.render(image, r, alpha=alpha))
            record = {
                "image": str(path),
                "decision": r.raw_decision,
                "probabilities": r.probability_map(),
                "box": r.box,
                "cam_class": r.cam_class,
                "overlay": name,
                "size": list(r.image_size),
            }
            f.write(json.dumps(record) + "\n")
            written += 1
    return written, failed
