"""cam_node over real DDS serving a model trained with `gapcam train --arch efficientnet_lite0`.

The model comes from the same door as every other (export with self-checks + card); the node
gets nothing but ``model_path``. Its decisions must equal the core's for that model, which shows
that nothing in the node assumes the shipped model's size, stride or classes.
"""

from __future__ import annotations

import pytest
from ros_harness import Camera, scene

pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch", reason="needs the train extra")

from gapcam.pipeline import Pipeline  # noqa: E402

NS = "/trained_cam"
TOPIC = f"{NS}/image_raw"


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    """A tiny 2-class EfficientNet-Lite0 (64 px, frozen trunk, one epoch) on synthetic scenes."""
    import dataclasses

    from gapcam.synth import generate_dataset
    from gapcam.training.architectures import default_input
    from gapcam.training.export import export_onnx
    from gapcam.training.train import TrainConfig, train

    work = tmp_path_factory.mktemp("trained_node")
    data = generate_dataset(work / "data", 24, seed=7, size=(96, 96), workers=1, progress=False)
    (data / "undefined").rename(data.parent / "dropped")  # 2 classes: not the shipped 3
    (data / "labels.jsonl").unlink()
    spec = dataclasses.replace(default_input("efficientnet_lite0", True), width=64, height=64)
    cfg = TrainConfig(
        epochs=1, batch_size=8, arch="efficientnet_lite0", pretrained=True, trainable_blocks=0
    )
    train(data, work / "m.pt", cfg, spec, progress=False, name="two_class", fallback_class=None)
    export_onnx(work / "m.pt", work / "two_class.onnx")
    return work / "two_class.onnx"


def test_node_serves_a_trained_model_like_the_core(start_node, ros, trained_model) -> None:
    pipe = Pipeline.from_model(trained_model)
    assert pipe.classes == ("blocked", "free")
    node = start_node(NS, TOPIC, model_path=str(trained_model))
    cam = Camera(ros=ros, node=node, topic=TOPIC, pipeline=pipe)
    cam.wait_ready()
    for seed in range(4):
        d = cam.send_and_wait(scene(seed))
        assert len(d.probabilities) == 2
    assert cam.verify() == 4
