"""Labelled image folders (ImageFolder layout), the format of the synthetic generator and of any
user's own real images.

``root/<class>/<image>`` gives the label; an optional ``root/labels.jsonl`` (written by
``gapcam data``) adds ground truth per image (vehicle boxes, the blocking vehicle's box, camera
side, conditions) keyed by the relative ``file`` path.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from gapcam.errors import GapcamError
from gapcam.imageio import IMAGE_SUFFIXES, read_image
from gapcam.model_card import InputSpec
from gapcam.preprocess import resize_to_input

LABELS_FILE = "labels.jsonl"


@dataclass
class Sample:
    path: Path
    label: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class LabelledFolder:
    root: Path
    classes: tuple[str, ...]
    samples: list[Sample]

    def targets(self) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[s.label] for s in self.samples], dtype=np.int64)


def scan_folder(root: str | Path, classes: tuple[str, ...] | None = None) -> LabelledFolder:
    """List ``root/<class>/*`` images; ``classes`` fixes the order (default: sorted folder names).

    A class folder that the model does not know is an error: silently dropping or relabelling
    images would make every metric wrong.
    """
    root = Path(root)
    if not root.is_dir():
        raise GapcamError(
            f"{root}: data directory not found; create it with `gapcam data --out {root}`"
        )
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not folders:
        raise GapcamError(
            f"{root}: no class folders (expected ImageFolder layout root/<class>/<image>)"
        )
    if classes is None:
        classes = tuple(folders)
    unknown = [f for f in folders if f not in classes]
    if unknown:
        raise GapcamError(
            f"{root}: class folders {unknown} are not among the model's classes {list(classes)}"
        )
    meta: dict[str, dict[str, Any]] = {}
    labels_path = root / LABELS_FILE
    if labels_path.is_file():
        with labels_path.open() as f:
            for line in f:
                if line.strip():
                    rec = json.loads(line)
                    meta[rec["file"]] = rec
    samples = []
    for c in classes:
        d = root / c
        if not d.is_dir():
            continue
        for p in sorted(d.iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                samples.append(Sample(p, c, meta.get(f"{c}/{p.name}", {})))
    if not samples:
        raise GapcamError(f"{root}: no images found in the class folders")
    return LabelledFolder(root, tuple(classes), samples)


def load_resized(
    folder: LabelledFolder, spec: InputSpec, progress: bool = True, workers: int = 2
) -> np.ndarray:
    """All images of ``folder`` as ``uint8`` ``(N, h, w, 3)`` through the runtime's own resize.

    Training caches this once and normalises per batch with :func:`gapcam.preprocess.normalize`,
    so it trains on exactly the pixels the deployed pipeline will produce.
    """

    def one(s: Sample) -> np.ndarray:
        return resize_to_input(read_image(s.path), spec)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        it = pool.map(one, folder.samples)
        arrays = list(
            tqdm(it, total=len(folder.samples), desc="load", disable=not progress, unit="img")
        )
    return np.stack(arrays)
