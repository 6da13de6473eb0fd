"""The model card contract and its checks against the ONNX file."""

from __future__ import annotations

import json
import shutil

import pytest

from gapcam.backends.onnxruntime_backend import OnnxRuntimeBackend
from gapcam.errors import ModelContractError
from gapcam.labels import LANE_CHANGE_CLASSES
from gapcam.model_card import ModelCard, card_path_for, load_card_for_onnx, sha256_file


def test_shipped_card_describes_the_shipped_onnx(shipped_model):
    card = load_card_for_onnx(shipped_model)
    assert card.onnx_sha256 == sha256_file(shipped_model)
    assert card.classes == LANE_CHANGE_CLASSES
    assert card.output.cam_height >= 14 and card.output.cam_width >= 14
    assert card.opset <= 17


def test_round_trip(tmp_path, shipped_model):
    card = load_card_for_onnx(shipped_model)
    card.save(tmp_path / "c.json")
    assert ModelCard.load(tmp_path / "c.json") == card


def _copy_model(tmp_path, shipped_model):
    onnx = tmp_path / "m.onnx"
    shutil.copy(shipped_model, onnx)
    shutil.copy(card_path_for(shipped_model), card_path_for(onnx))
    return onnx


def test_card_of_another_model_is_refused(tmp_path, shipped_model):
    import onnx as onnx_lib

    onnx = _copy_model(tmp_path, shipped_model)
    model = onnx_lib.load(str(onnx))
    model.doc_string = "retrained"  # a different, valid model now
    onnx_lib.save(model, str(onnx))
    with pytest.raises(ModelContractError, match="does not match its model card"):
        load_card_for_onnx(onnx)


def test_damaged_onnx_with_its_own_card_is_called_damaged(tmp_path, shipped_model):
    onnx = _copy_model(tmp_path, shipped_model)
    with onnx.open("ab") as f:
        f.write(b"\0")  # one stray byte: no longer a valid protobuf
    with pytest.raises(ModelContractError, match="ONNX file is damaged/truncated"):
        load_card_for_onnx(onnx)


def test_card_with_wrong_output_shape_is_refused_at_load(tmp_path, shipped_model):
    onnx = _copy_model(tmp_path, shipped_model)
    data = json.loads(card_path_for(onnx).read_text())
    data["output"]["cam_height"] = 7
    card_path_for(onnx).write_text(json.dumps(data))
    with pytest.raises(ModelContractError, match="cam shape"):
        OnnxRuntimeBackend(onnx)


def test_missing_malformed_and_inconsistent_cards(tmp_path, shipped_model):
    onnx = _copy_model(tmp_path, shipped_model)
    data = json.loads(card_path_for(onnx).read_text())
    card_path_for(onnx).write_text("{not json")
    with pytest.raises(ModelContractError, match="not valid JSON"):
        load_card_for_onnx(onnx)
    data["classes"] = ["a", "b"]
    card_path_for(onnx).write_text(json.dumps(data))
    with pytest.raises(ModelContractError, match="classes"):
        load_card_for_onnx(onnx)
    card_path_for(onnx).unlink()
    with pytest.raises(ModelContractError, match="model card not found"):
        load_card_for_onnx(onnx)
