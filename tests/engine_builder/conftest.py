"""Fixtures of the engine-builder tests: the shipped model, small labelled image folders, and one
Q/DQ model quantised once per session (quantisation is the slowest step, about 2 s)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from engine_builder.calibration_set import create_set_from_images, load_image_set
from gapcam.model_card import load_card_for_onnx

CLASSES = ("blocked", "free", "undefined")


def make_scene(rng: np.random.Generator, label: str, size: int = 160) -> np.ndarray:
    """A crude rear-side view: sky/road gradient, lane line, a 'vehicle' box for blocked."""
    img = np.zeros((size, size, 3), np.uint8)
    sky = rng.integers(120, 230)
    road = rng.integers(40, 110)
    img[: size // 2] = (sky, sky - 10, sky - 30)
    img[size // 2 :] = (road, road, road)
    cv2.line(img, (size // 3, size), (size // 2, size // 2), (230, 230, 230), 3)
    if label == "blocked":
        x = int(rng.integers(10, size // 2))
        cv2.rectangle(
            img,
            (x, size // 2),
            (x + size // 3, size - 20),
            tuple(int(v) for v in rng.integers(0, 255, 3)),
            -1,
        )
    elif label == "undefined":
        img = cv2.GaussianBlur(img, (0, 0), 6) // 2
    noise = rng.normal(0, 6, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def write_folder(root: Path, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        label = CLASSES[i % 3]
        (root / label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / label / f"{i:04d}.png"), make_scene(rng, label))
    return root


@pytest.fixture(scope="session")
def card(shipped_model):
    return load_card_for_onnx(shipped_model)


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """96 labelled PNG scenes in ImageFolder layout (no manifest)."""
    return write_folder(tmp_path_factory.mktemp("scenes"), 96, seed=1)


@pytest.fixture(scope="session")
def calib_set(tmp_path_factory, image_folder, card):
    """64 frames selected from the folder, with a manifest."""
    out = tmp_path_factory.mktemp("calib")
    return create_set_from_images([image_folder], out, card.input, count=64)


@pytest.fixture(scope="session")
def val_set(tmp_path_factory, card):
    return load_image_set(write_folder(tmp_path_factory.mktemp("val"), 48, seed=2), card.input)


@pytest.fixture(scope="session")
def qdq_model(tmp_path_factory, shipped_model, card, calib_set, val_set):
    """The shipped model quantised (Q/DQ) once, written beside a copy of the FP32 model."""
    from engine_builder.quantize import QUANTIZE_THRESHOLDS, quantize_model

    out = tmp_path_factory.mktemp("qdq") / "lane_change.int8.qdq.onnx"
    result = quantize_model(
        shipped_model,
        card,
        calib_set,
        out,
        validation=val_set,
        thresholds=QUANTIZE_THRESHOLDS,
        force=True,  # 48 validation frames are few for a verdict: the report is what is tested
        say=lambda _m: None,
    )
    return result
