"""Shared fixtures: the shipped model and small real images made on the fly."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHIPPED_MODEL = REPO / "models" / "lane_change.onnx"


@pytest.fixture(scope="session")
def shipped_model() -> Path:
    return SHIPPED_MODEL


@pytest.fixture(scope="session")
def shipped_chw(shipped_model) -> tuple[int, ...]:
    """The shipped model's input shape after the batch axis (from its card: tests that feed
    the network random tensors must not assume its size)."""
    from gapcam.model_card import ModelCard, card_path_for, expected_input_shape

    return tuple(
        int(d) for d in expected_input_shape(ModelCard.load(card_path_for(shipped_model)).input)[1:]
    )


@pytest.fixture(scope="session")
def pipeline(shipped_model):
    from gapcam.pipeline import Pipeline

    return Pipeline.from_model(shipped_model)


@pytest.fixture(scope="session")
def scene_image() -> np.ndarray:
    """A 640x480 synthetic rear-side camera frame with a blocking vehicle."""
    from gapcam.synth import render_scene

    return render_scene(7, size=(640, 480), side="left", label="blocked")[0]


@pytest.fixture()
def image_files(tmp_path, scene_image) -> dict[str, Path]:
    """The same scene as colour JPEG, colour PNG, grayscale PNG and a 16-bit PNG."""
    files = {
        "jpg": tmp_path / "frame.jpg",
        "png": tmp_path / "frame.png",
        "gray": tmp_path / "gray.png",
        "png16": tmp_path / "deep.png",
    }
    cv2.imwrite(str(files["jpg"]), scene_image)
    cv2.imwrite(str(files["png"]), scene_image)
    cv2.imwrite(str(files["gray"]), cv2.cvtColor(scene_image, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(files["png16"]), scene_image.astype(np.uint16) * 257)
    return files


#: Classes of the 5-class imported model (a user's own classifier, not the lane-change task).
FIVE_CLASSES = ("car", "truck", "bike", "person", "empty")


@pytest.fixture(scope="session")
def imported_five_class(tmp_path_factory) -> Path:
    """A MobileNetV2-like PyTorch classifier (random weights, 64 px, 5 classes) exported the
    standard way (static batch, ``input``/``logits``) and brought in with ``gapcam import``
    without a fallback class: the runtime must publish its top-1, whatever the class order."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "onnx_import"))
    from import_models import MobileNetV2Like, export_standard, randomize_batchnorm

    from gapcam.onnx_import import import_model

    d = tmp_path_factory.mktemp("imported")
    net = randomize_batchnorm(MobileNetV2Like(len(FIVE_CLASSES)), seed=5)
    src = export_standard(net, d / "user.onnx", 64)
    res = import_model(src, d / "five" / "five.onnx", FIVE_CLASSES, mean=(0.5,) * 3, std=(0.5,) * 3)
    return res.onnx_path


@pytest.fixture(scope="session")
def model_without_features(shipped_model, tmp_path_factory) -> Path:
    """The shipped network with its ``features`` output removed (as ``export --no-features``
    writes it), with a card that says so."""
    import dataclasses

    import onnx

    from gapcam.model_card import ModelCard, card_path_for, sha256_file

    model = onnx.load(str(shipped_model))
    kept = [o for o in model.graph.output if o.name != "features"]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    out = tmp_path_factory.mktemp("nofeatures") / "no_features.onnx"
    onnx.save(model, str(out))
    card = ModelCard.load(card_path_for(shipped_model))
    card = dataclasses.replace(
        card,
        output=dataclasses.replace(card.output, features=None, feature_channels=0),
        onnx_sha256=sha256_file(out),
    )
    card.save(card_path_for(out))
    return out
