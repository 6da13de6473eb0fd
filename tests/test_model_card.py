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


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ((), "onnx_sha256"),
        ((), "classifier_bias"),
        (("input",), "width"),
        (("input",), "mean"),
        (("output",), "num_classes"),
        (("output",), "cam_height"),
    ],
)
def test_required_fields_are_required_and_named(tmp_path, shipped_model, path, field):
    """No field silently becomes the shipped model's value (128 px, 3 classes, 16x16)."""
    onnx = _copy_model(tmp_path, shipped_model)
    data = json.loads(card_path_for(onnx).read_text())
    target = data
    for p in path:
        target = target[p]
    del target[field]
    card_path_for(onnx).write_text(json.dumps(data))
    name = ".".join((*path, field))
    with pytest.raises(ModelContractError, match=f"required field '{name}' is missing") as exc:
        load_card_for_onnx(onnx)
    assert "\n" not in str(exc.value)


def test_empty_sha256_is_refused(tmp_path, shipped_model):
    onnx = _copy_model(tmp_path, shipped_model)
    data = json.loads(card_path_for(onnx).read_text())
    data["onnx_sha256"] = ""
    card_path_for(onnx).write_text(json.dumps(data))
    with pytest.raises(ModelContractError, match="'onnx_sha256' is empty"):
        load_card_for_onnx(onnx)


def test_shipped_card_has_the_new_fields(shipped_model):
    card = load_card_for_onnx(shipped_model)
    assert card.fallback_class == "undefined"
    assert card.localisation_class == "blocked"
    assert card.input.layout == "NCHW"


def test_fallback_layout_and_duplicate_classes_are_validated(shipped_model):
    data = load_card_for_onnx(shipped_model).to_dict()
    for change, fragment in (
        ({"fallback_class": "maybe"}, "fallback_class 'maybe' is not one of the classes"),
        ({"input": {**data["input"], "layout": "CHW"}}, "layout 'CHW' unknown"),
        ({"classes": ["a", "a", "b"]}, "'a' appears twice"),
    ):
        with pytest.raises(ModelContractError, match=fragment):
            ModelCard.from_dict({**data, **change})


def _one_channel_model(tmp_path):
    """A valid 1-channel GAP classifier with a card that (wrongly) promises colour input."""
    import numpy as np
    import onnx as onnx_lib
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((2, 1, 1, 1), np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "w"], ["cam"]),
            helper.make_node("ReduceMean", ["cam"], ["logits"], axes=[2, 3], keepdims=0),
        ],
        "gray",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2]),
            helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["N", 2, 8, 8]),
        ],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "gray.onnx"
    onnx_lib.save(model, str(path))
    card = {
        "schema_version": 1,
        "name": "gray",
        "classes": ["x", "y"],
        "input": {
            "name": "image",
            "width": 8,
            "height": 8,
            "color_order": "RGB",
            "mean": [0, 0, 0],
            "std": [1, 1, 1],
        },
        "output": {
            "logits": "logits",
            "cam": "cam",
            "num_classes": 2,
            "cam_height": 8,
            "cam_width": 8,
        },
        "classifier_bias": [0, 0],
        "onnx_sha256": sha256_file(path),
    }
    card_path_for(path).write_text(json.dumps(card))
    return path


def test_channel_count_and_layout_checked_at_load(tmp_path):
    path = _one_channel_model(tmp_path)
    with pytest.raises(
        ModelContractError, match="1 channel\\(s\\) .* 3-channel colour images"
    ) as exc:
        OnnxRuntimeBackend(path)
    assert "\n" not in str(exc.value)
    data = json.loads(card_path_for(path).read_text())
    data["input"]["layout"] = "NHWC"
    card_path_for(path).write_text(json.dumps(data))
    with pytest.raises(ModelContractError, match="channel"):
        OnnxRuntimeBackend(path)


def test_describe_says_what_the_model_expects(shipped_model):
    text = load_card_for_onnx(shipped_model).describe()
    card = load_card_for_onnx(shipped_model)
    size = f"{card.input.height}, {card.input.width}"
    assert f"'image': float32 ['N', 3, {size}] (NCHW), {card.input.color_order}" in text
    assert "fallback   undefined" in text and "3: blocked, free, undefined" in text
