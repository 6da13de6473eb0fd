"""The training/validation split, written once: training holds the validation images out with it,
and export chooses the CAM box threshold on exactly those images (:mod:`gapcam.cam_threshold`).

Training shuffles the samples of its data folder in :func:`gapcam.dataset.scan_folder` order
(class folders in order, files sorted) with a generator seeded by ``TrainConfig.seed`` and keeps
the first ``round(n * val_fraction)`` for validation. Because the synthetic generator renders
image ``i`` of a data set from ``(seed, i)`` alone, the validation images of a model trained on
``gapcam data`` output can be rendered again without the other 90% (:func:`validation_indices`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gapcam.dataset import Sample, scan_folder

#: Share of the training data held out for validation (``TrainConfig.val_fraction``).
DEFAULT_VAL_FRACTION = 0.1


def split_train_val(
    rng: np.random.Generator, n: int, val_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(validation, training)`` positions of ``n`` samples; draws one permutation from ``rng``."""
    order = rng.permutation(n)
    n_val = max(1, int(round(n * val_fraction)))
    return order[:n_val], order[n_val:]


def validation_positions(n: int, seed: int, val_fraction: float) -> np.ndarray:
    """The validation positions training chose for ``n`` samples with ``seed`` (fresh generator,
    as :func:`gapcam.training.train.train` seeds one before anything else draws from it)."""
    return split_train_val(np.random.default_rng(seed), n, val_fraction)[0]


def validation_indices(
    plan: list[str], classes: tuple[str, ...], seed: int, val_fraction: float
) -> list[int]:
    """Generator indices of the validation images of a synthetic set.

    ``plan`` is the class of each generator index (:func:`gapcam.synth.dataset.class_plan`);
    the folder lists images class by class, by index within a class, and the split permutes
    that order.
    """
    folder_order = sorted(range(len(plan)), key=lambda i: (classes.index(plan[i]), i))
    return sorted(folder_order[int(p)] for p in validation_positions(len(plan), seed, val_fraction))


def validation_samples(
    data_dir: str | Path, seed: int, val_fraction: float, classes: tuple[str, ...] | None = None
) -> list[Sample]:
    """The samples of ``data_dir`` that training with ``seed``/``val_fraction`` held out."""
    folder = scan_folder(data_dir, classes)
    return [
        folder.samples[int(p)]
        for p in validation_positions(len(folder.samples), seed, val_fraction)
    ]
