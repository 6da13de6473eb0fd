"""Write a labelled data set (ImageFolder layout + labels.jsonl) with several processes.

Every image's seed is derived from ``(seed, index)`` and the class plan is fixed up front, so the
output is byte-identical whatever the number of workers; workers write their own JPEGs and the
parent writes ``labels.jsonl`` in index order.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from gapcam.errors import GapcamError
from gapcam.labels import LANE_CHANGE_CLASSES
from gapcam.synth.scene import _check_size, render_scene

LABELS_FILE = "labels.jsonl"
JPEG_QUALITY = 95


def image_seed(seed: int, index: int) -> int:
    """The per-image seed: a 63-bit hash of (data set seed, index)."""
    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


def class_plan(n: int, seed: int) -> list[str]:
    """Exactly balanced classes (counts differ by at most one), in a seeded random order."""
    base = [LANE_CHANGE_CLASSES[i % len(LANE_CHANGE_CLASSES)] for i in range(n)]
    order = np.random.default_rng([int(seed), 99]).permutation(n)
    return [base[i] for i in order]


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core; OpenCV's own threads would only contend


def _render_one(task: tuple[int, int, str, tuple[int, int], str]) -> dict:
    index, seed, label, size, out_dir = task
    img, meta = render_scene(seed, size=size, label=label)
    rel = f"{meta['label']}/{index:06d}.jpg"
    if not cv2.imwrite(str(Path(out_dir) / rel), img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise OSError(f"could not write {Path(out_dir) / rel}")
    return {"file": rel, "index": index, **meta}


def generate_dataset(
    out_dir: str | Path,
    n: int,
    seed: int,
    size: tuple[int, int] = (224, 224),
    workers: int = 2,
    progress: bool = True,
    indices: Sequence[int] | None = None,
) -> Path:
    """Render ``n`` images to ``out_dir/<label>/<index:06d>.jpg`` plus ``out_dir/labels.jsonl``.

    ``indices`` renders only those images of the ``n``-image set, identical to the full set's
    (e.g. a trained model's validation images, :mod:`gapcam.training.validation_split`).

    Returns ``out_dir``. Refuses a folder that already holds a data set (stale images would mix
    into the new one).
    """
    if n < 0:
        raise GapcamError(f"the number of images must be >= 0, got {n}")
    if seed < 0:
        raise GapcamError(f"the seed must be >= 0, got {seed}")
    size = _check_size(size)
    out = Path(out_dir)
    if (out / LABELS_FILE).exists() or any(
        any((out / c).glob("*.jpg")) for c in LANE_CHANGE_CLASSES if (out / c).is_dir()
    ):
        raise GapcamError(f"{out} already holds a data set: choose an empty folder or delete it")
    for c in LANE_CHANGE_CLASSES:
        (out / c).mkdir(parents=True, exist_ok=True)
    plan = class_plan(n, seed)
    chosen = range(n) if indices is None else sorted({int(i) for i in indices})
    if chosen and not (min(chosen) >= 0 and max(chosen) < n):
        raise GapcamError(f"image indices must lie in 0..{n - 1}")
    tasks = [(i, image_seed(seed, i), plan[i], size, str(out)) for i in chosen]
    tmp = out / (LABELS_FILE + ".part")
    pool = None
    try:
        if workers > 1 and len(tasks) > 1:
            pool = mp.get_context("spawn").Pool(min(workers, len(tasks)), initializer=_init_worker)
            results = pool.imap(_render_one, tasks, chunksize=8)
        else:
            results = map(_render_one, tasks)
        with (
            tmp.open("w") as f,
            tqdm(
                total=len(tasks), disable=not progress, file=sys.stderr, unit="img", desc="synth"
            ) as bar,
        ):
            for rec in results:
                f.write(json.dumps(rec) + "\n")
                bar.update()
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    tmp.replace(out / LABELS_FILE)
    return out
