"""Train -> export through the CLI on a tiny synthetic set: the self-checks and the card."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from gapcam.cam_threshold import CANDIDATES
from gapcam.cli import main
from gapcam.model_card import card_path_for, load_card_for_onnx

torch = pytest.importorskip("torch", reason="training needs the optional torch extra")

from gapcam.training.validation_split import validation_samples  # noqa: E402


def test_data_train_export_round_trip(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["data", "--out", str(data), "--n", "24", "--seed", "5", "--workers", "1"]) == 0
    lines = (data / "labels.jsonl").read_text().splitlines()
    assert len(lines) == 24 and {json.loads(x)["label"] for x in lines} == {
        "blocked",
        "free",
        "undefined",
    }

    ckpt = tmp_path / "m.pt"
    assert (
        main(
            ["train", "--data", str(data), "--out", str(ckpt), "--epochs", "1", "--batch-size", "8"]
        )
        == 0
    )
    report = json.loads(ckpt.with_suffix(".report.json").read_text())
    assert report["train_images"] + report["val_images"] == 24

    onnx_path = tmp_path / "m.onnx"
    assert main(["export", str(ckpt), "--out", str(onnx_path)]) == 0
    card = load_card_for_onnx(onnx_path)
    assert card.classes == ("blocked", "free", "undefined")
    assert card.provenance["train_images"] == report["train_images"]
    # The bias in the card is the network's: the export self-check relies on it.
    state = torch.load(ckpt, weights_only=False)["state_dict"]
    np.testing.assert_allclose(card.classifier_bias, state["fc.bias"].numpy(), rtol=1e-6)
    assert "self-checks passed" in capsys.readouterr().out
    # The CAM threshold was chosen on the images training held out (its data folder is here).
    held_out = validation_samples(data, 0, report["config"]["val_fraction"])
    boxed = [s for s in held_out if s.label == "blocked" and s.meta.get("blocking_box")]
    assert boxed, "seed 5 holds out a blocked image with a box"
    assert card.cam_threshold in CANDIDATES
    assert card.metrics["cam_threshold_images"] == len(boxed)


def test_export_self_check_catches_a_wrong_bias(tmp_path):
    """The GAP identity must fail when the card's bias is not the network's."""
    from gapcam.errors import GapcamError
    from gapcam.model_card import InputSpec, ModelCard
    from gapcam.training.export import export_onnx, self_check
    from gapcam.training.network import DEFAULT_WIDTHS, LaneChangeNet

    net = LaneChangeNet()
    ckpt = tmp_path / "x.pt"
    torch.save(
        {
            "state_dict": net.state_dict(),
            "classes": ["blocked", "free", "undefined"],
            "widths": list(DEFAULT_WIDTHS),
            "input": dataclasses.asdict(InputSpec()),
            "report": {},
        },
        ckpt,
    )
    onnx_path = tmp_path / "x.onnx"
    export_onnx(ckpt, onnx_path)
    card = ModelCard.load(card_path_for(onnx_path))
    wrong = tuple(b + 0.5 for b in card.classifier_bias)
    dataclasses.replace(card, classifier_bias=wrong).save(card_path_for(onnx_path))
    with pytest.raises(GapcamError, match="GAP identity"):
        self_check(onnx_path, net)


def _small_checkpoint(tmp_path, spec):
    from gapcam.training.network import DEFAULT_WIDTHS, LaneChangeNet

    ckpt = tmp_path / "s.pt"
    torch.save(
        {
            "state_dict": LaneChangeNet().state_dict(),
            "classes": ["blocked", "free", "undefined"],
            "widths": list(DEFAULT_WIDTHS),
            "input": dataclasses.asdict(spec),
            "report": {},
        },
        ckpt,
    )
    return ckpt


def test_a_failed_self_check_leaves_no_model_behind(tmp_path, monkeypatch):
    from gapcam.errors import GapcamError
    from gapcam.model_card import InputSpec
    from gapcam.training import export

    ckpt = _small_checkpoint(tmp_path, InputSpec())
    monkeypatch.setattr(export, "GAP_TOLERANCE", -1.0)  # no identity error can be below this
    out = tmp_path / "models" / "m.onnx"
    with pytest.raises(GapcamError, match="GAP identity"):
        export.export_onnx(ckpt, out)
    assert sorted(p.name for p in out.parent.iterdir()) == []  # no ONNX, no card, no temp folder


def test_the_input_name_of_the_checkpoint_is_the_graphs_and_its_batch_is_dynamic(tmp_path):
    import onnx

    from gapcam.model_card import InputSpec
    from gapcam.training.export import export_onnx

    ckpt = _small_checkpoint(tmp_path, InputSpec(name="input", width=96, height=64))
    card = export_onnx(ckpt, tmp_path / "m.onnx", name="renamed", fallback_class="free")
    g = onnx.load(str(tmp_path / "m.onnx")).graph
    (inp,) = g.input
    assert inp.name == "input" and inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim[1:]] == [3, 64, 96]
    assert card.name == "renamed" and card.fallback_class == "free"
    assert card.provenance["self_check"]["ort_vs_torch_logits"] < 1e-3
