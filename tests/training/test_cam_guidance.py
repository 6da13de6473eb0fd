"""Box-guided CAM loss: box -> CAM cells, and the loss prefers maps that sit on the box."""

from __future__ import annotations

import numpy as np
import pytest

from gapcam.dataset import Sample

torch = pytest.importorskip("torch", reason="training needs the optional torch extra")

from gapcam.training.train import box_masks, cam_box_loss  # noqa: E402


def test_box_masks_follow_the_stretch_resize():
    samples = [
        Sample(
            path=None,
            label="blocked",
            meta={"blocking_box": [56, 112, 112, 224], "size": [224, 224]},
        ),
        Sample(
            path=None,
            label="blocked",
            meta={"blocking_box": [640, 0, 1280, 360], "size": [1280, 720]},
        ),
        Sample(path=None, label="free", meta={"blocking_box": None, "size": [224, 224]}),
    ]
    masks, has = box_masks(samples, (16, 16))
    assert has.tolist() == [True, True, False]
    assert masks[0].sum() == 4 * 8 and masks[0][8:16, 4:8].all()
    assert masks[1][0:8, 8:16].all() and masks[1].sum() == 64  # right half, top half
    assert not masks[2].any()


def test_loss_prefers_a_cam_on_the_box_over_one_beside_it():
    mask = torch.zeros(1, 16, 16)
    mask[0, 8:14, 2:6] = 1.0
    on_box = torch.full((1, 16, 16), -1.0)
    on_box[0, 8:14, 2:6] = 3.0
    beside = torch.full((1, 16, 16), -1.0)
    beside[0, 8:14, 7:11] = 3.0  # same shape, shifted next to the vehicle
    assert cam_box_loss(on_box, mask) < cam_box_loss(beside, mask) - 1.0


def test_loss_prefers_the_right_extent():
    mask = torch.zeros(1, 16, 16)
    mask[0, 4:12, 4:12] = 1.0
    tight = torch.where(mask > 0, 2.0, 0.0)
    spilled = torch.zeros(1, 16, 16)
    spilled[0, 2:14, 2:14] = 2.0  # right place, far too large
    assert cam_box_loss(tight, mask) < cam_box_loss(spilled, mask)
    # and it has gradients for training
    cam = spilled.clone().requires_grad_(True)
    cam_box_loss(cam, mask).backward()
    assert np.isfinite(cam.grad.numpy()).all() and cam.grad.abs().sum() > 0
