"""Seeded training of a GAP classifier (``--arch small|efficientnet_lite0``) on an ImageFolder.

Images go through the runtime's own preprocessing (:func:`gapcam.dataset.load_resized` then
:func:`gapcam.preprocess.normalize`), so there is no second, subtly different pipeline.
Augmentation is a horizontal flip (a left camera mirrored is a right camera: same labels) and a
mild brightness/contrast jitter on the ``uint8`` images.

Box-guided CAM loss. Trained on labels alone, the ``blocked`` CAM of this task peaks *beside*
the blocking vehicle (on the lane line between it and the ego car, which is what separates
"adjacent lane" from "own lane"). Where the data carries the blocking vehicle's box (the
synthetic ``labels.jsonl`` does), an auxiliary term asks the CAM of the true class to put its
mass inside that box (``-log(sum_{cells in box} softmax_xy(M_c))``) and its min-max normalised
map to match the box (binary cross-entropy), weighted by ``cam_loss_weight``. The head stays GAP + one linear layer, so the CAM is as exact as before;
only where the evidence sits changes. Images without a box (other classes, user data) are
trained on labels alone.

Frozen trunk (``trainable_blocks``, ``gapcam train --freeze N``): only the last N blocks of the
pretrained EfficientNet-Lite0 (and then its 1280-channel convolution) and the CAM head learn;
``--freeze 0`` trains the CAM head alone. The frozen part
is then a fixed function of the image, so its output is computed once per image (float16, in
memory) and every epoch trains on it: on 2 CPU cores this is what makes fine-tuning feasible.
It is computed for each image and for its mirror image, so the flip augmentation (a left camera
mirrored is a right camera) survives; the brightness jitter does not (the cache is of the
unjittered pixels).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from tqdm import tqdm

from gapcam.dataset import load_resized, scan_folder
from gapcam.errors import GapcamError
from gapcam.model_card import InputSpec
from gapcam.preprocess import normalize
from gapcam.training.architectures import build_network
from gapcam.training.network import DEFAULT_WIDTHS
from gapcam.training.validation_split import DEFAULT_VAL_FRACTION, split_train_val

#: Marks a checkpoint written by this module (export refuses anything else in one line).
CHECKPOINT_FORMAT = "gapcam-checkpoint-1"


@dataclass
class TrainConfig:
    epochs: int = 8
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    val_fraction: float = DEFAULT_VAL_FRACTION
    seed: int = 0
    threads: int = 2
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    #: ``small`` (from scratch) or ``efficientnet_lite0``.
    arch: str = "small"
    #: Start from ImageNet weights (efficientnet_lite0 only).
    pretrained: bool = False
    #: Train only the last N blocks (+ head conv + linear); ``None`` trains everything.
    trainable_blocks: int | None = None
    #: Weight of the box-guided CAM loss (0 = labels only); used where boxes exist.
    cam_loss_weight: float = 0.5
    #: Weight of the extent term inside the CAM loss, relative to the mass term.
    cam_extent_weight: float = 4.0


def _augment(batch: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Flip + brightness/contrast jitter; returns the images and which ones were flipped."""
    flip = rng.random(len(batch)) < 0.5
    batch = batch.copy()
    batch[flip] = batch[flip, :, ::-1]
    gain = rng.uniform(0.8, 1.2, (len(batch), 1, 1, 1)).astype(np.float32)
    bias = rng.uniform(-15, 15, (len(batch), 1, 1, 1)).astype(np.float32)
    return np.clip(batch.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8), flip


def box_masks(folder_samples: list, grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per sample, the CAM cells (``grid`` = (h, w)) covered by its ``blocking_box``.

    Boxes are in image pixels; the "stretch" resize maps them to the grid by a per-axis scale.
    Returns ``(masks (N, h, w) float32, has_box (N,) bool)``.
    """
    gh, gw = grid
    masks = np.zeros((len(folder_samples), gh, gw), np.float32)
    has = np.zeros(len(folder_samples), bool)
    for i, s in enumerate(folder_samples):
        box, size = s.meta.get("blocking_box"), s.meta.get("size")
        if not box or not size:
            continue
        w, h = size
        x0 = int(np.floor(box[0] / w * gw))
        x1 = max(x0 + 1, int(np.ceil(box[2] / w * gw)))
        y0 = int(np.floor(box[1] / h * gh))
        y1 = max(y0 + 1, int(np.ceil(box[3] / h * gh)))
        masks[i, y0:y1, x0:x1] = 1.0
        has[i] = True
    return masks, has


def cam_box_loss(
    cam: torch.Tensor, masks: torch.Tensor, extent_weight: float = 1.0
) -> torch.Tensor:
    """Box guidance for CAMs ``(N, h, w)`` with box masks ``(N, h, w)``, two terms averaged:

    * mass: ``-log`` of the spatial softmax mass inside the box (puts the peak on the vehicle);
    * extent: binary cross-entropy between the min-max normalised CAM and the mask, so the
      20%-of-max region used for the CAM box covers the vehicle and little else.
    """
    flat, m = cam.flatten(1), masks.flatten(1)
    logp = torch.log_softmax(flat, dim=1)
    mass = -torch.logsumexp(logp.masked_fill(m < 0.5, float("-inf")), dim=1).mean()
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    norm = ((flat - lo) / (hi - lo + 1e-6)).clamp(1e-4, 1 - 1e-4)
    extent = F.binary_cross_entropy(norm, m)
    return mass + extent_weight * extent


def _confusion(y: np.ndarray, p: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (y, p), 1)
    return m


def train(
    data_dir: str | Path,
    out_path: str | Path,
    config: TrainConfig | None = None,
    spec: InputSpec | None = None,
    progress: bool = True,
    *,
    name: str = "lane_change",
    fallback_class: str | None = None,
) -> dict:
    """Train and save a checkpoint (``.pt``) with weights, classes, input spec and report.

    Returns the report (validation accuracy, confusion matrix, history, wall time).
    """
    cfg = config or TrainConfig()
    spec = spec or InputSpec()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    t_start = time.time()

    folder = scan_folder(data_dir)
    classes = folder.classes
    if len(classes) < 2:
        raise GapcamError(f"{data_dir}: training needs at least 2 class folders, found {classes}")
    if fallback_class is not None and fallback_class not in classes:
        raise GapcamError(
            f"--fallback-class {fallback_class!r} is not one of the class folders {list(classes)}"
        )
    images = load_resized(folder, spec, progress=progress)
    targets = folder.targets()
    val_idx, train_idx = split_train_val(rng, len(images), cfg.val_fraction)
    n_val = len(val_idx)
    if len(train_idx) == 0:
        raise GapcamError(f"{data_dir}: too few images to hold out a validation set")

    net = build_network(cfg.arch, len(classes), spec, pretrained=cfg.pretrained, widths=cfg.widths)
    cached = cached_flipped = None
    if cfg.trainable_blocks is not None:
        if not hasattr(net, "freeze"):
            raise GapcamError("--freeze exists only for --arch efficientnet_lite0")
        net.freeze(cfg.trainable_blocks)
        cached, cached_flipped = _frozen_outputs(net, images, spec, progress)
    grid = (spec.height // net.feature_stride, spec.width // net.feature_stride)
    masks, has_box = box_masks(folder.samples, grid)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_idx) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=total, pct_start=0.15
    )

    def forward(idx: np.ndarray, augment: bool) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        if cached is not None:
            i = torch.from_numpy(idx)
            flipped = rng.random(len(idx)) < 0.5 if augment else np.zeros(len(idx), bool)
            mirror = torch.from_numpy(flipped)[:, None, None, None]
            maps = (
                torch.where(mirror, m[i], c[i]).float()
                for c, m in zip(cached, cached_flipped, strict=True)
            )
            logits, cam, _ = net.cam_from_features(net.trunk_trainable(*maps))
            return logits, cam, flipped
        if augment:
            batch, flipped = _augment(images[idx], rng)
        else:
            batch, flipped = images[idx], np.zeros(len(idx), bool)
        logits, cam, _ = net.forward_cam(torch.from_numpy(normalize(batch, spec)))
        return logits, cam, flipped

    history = []
    bar = tqdm(total=total, desc="train", disable=not progress, unit="step")
    for epoch in range(cfg.epochs):
        net.train()
        perm = rng.permutation(train_idx)
        loss_sum = correct = seen = 0
        for s in range(0, len(perm), cfg.batch_size):
            idx = perm[s : s + cfg.batch_size]
            logits, cam, flipped = forward(idx, augment=True)
            y = torch.from_numpy(targets[idx])
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            boxed = has_box[idx]
            if cfg.cam_loss_weight > 0 and boxed.any():
                m = masks[idx][boxed]
                m[flipped[boxed]] = m[flipped[boxed], :, ::-1]
                c = cam[torch.from_numpy(boxed), y[torch.from_numpy(boxed)]]
                loss = loss + cfg.cam_loss_weight * cam_box_loss(
                    c, torch.from_numpy(m.copy()), cfg.cam_extent_weight
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(idx)
            bar.update(1)
            bar.set_postfix(
                epoch=epoch + 1, loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}"
            )
        val_acc, pred = _evaluate(forward, net, val_idx, targets[val_idx])
        recall = _recalls(targets[val_idx], pred, classes)
        history.append(
            {
                "epoch": epoch + 1,
                "loss": loss_sum / seen,
                "train_acc": correct / seen,
                "val_acc": val_acc,
                "val_recall": recall,
            }
        )
        bar.write(
            f"epoch {epoch + 1}/{cfg.epochs}: loss {loss_sum / seen:.4f} "
            f"train acc {correct / seen:.4f} val acc {val_acc:.4f} | recall "
            + " ".join(f"{c} {r:.3f}" for c, r in recall.items())
        )
    bar.close()

    val_acc, pred = _evaluate(forward, net, val_idx, targets[val_idx])
    report = {
        "val_accuracy": val_acc,
        "val_confusion": _confusion(targets[val_idx], pred, len(classes)).tolist(),
        "classes": list(classes),
        "train_images": int(len(train_idx)),
        "val_images": int(n_val),
        "history": history,
        "wall_time_s": round(time.time() - t_start, 1),
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()},
        "data": str(Path(data_dir)),
        "torch": torch.__version__,
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "state_dict": net.state_dict(),
            "classes": list(classes),
            "arch": cfg.arch,
            "pretrained": cfg.pretrained,
            "trainable_blocks": cfg.trainable_blocks,
            "widths": list(cfg.widths),
            "input": asdict(spec),
            "name": name,
            "fallback_class": fallback_class,
            "report": report,
        },
        out_path,
    )
    out_path.with_suffix(".report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


class _FrozenTrunk(torch.nn.Module):
    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.net.trunk_frozen(x)


@torch.no_grad()
def _frozen_outputs(
    net, images: np.ndarray, spec: InputSpec, progress: bool
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:  # noqa: ANN001
    """The frozen trunk's outputs for every image and for its mirror image, once (float16 to
    halve the memory): ``(maps, mirrored maps)``, each a tuple as ``trunk_frozen`` returns.

    Computed with ONNX Runtime on one temporary export of the frozen part: PyTorch's CPU depthwise
    convolutions are several times slower, and this is the bulk of the work.
    """
    import tempfile
    import warnings

    import onnxruntime as ort

    net.eval()
    x0 = torch.from_numpy(normalize(images[:1], spec))
    n_out = len(net.trunk_frozen(x0))
    names = [f"f{i}" for i in range(n_out)]
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "trunk.onnx")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _FrozenTrunk(net),
                (x0,),
                path,
                opset_version=17,
                dynamo=False,
                input_names=["x"],
                output_names=names,
                dynamic_axes={"x": {0: "n"}, **{n: {0: "n"} for n in names}},
            )
        so = ort.SessionOptions()
        so.intra_op_num_threads = torch.get_num_threads()
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

        def run(batch_images: np.ndarray, desc: str) -> tuple[torch.Tensor, ...]:
            out: list[list[torch.Tensor]] = [[] for _ in names]
            for s in tqdm(
                range(0, len(batch_images), 32), desc=desc, disable=not progress, unit="batch"
            ):
                maps = sess.run(None, {"x": normalize(batch_images[s : s + 32], spec)})
                for acc, f in zip(out, maps, strict=True):
                    acc.append(torch.from_numpy(f).half())
            return tuple(torch.cat(acc) for acc in out)

        return run(images, "frozen trunk"), run(images[:, :, ::-1], "frozen trunk, mirrored")


def _recalls(y: np.ndarray, p: np.ndarray, classes: tuple[str, ...]) -> dict[str, float]:
    return {
        c: float((p[y == i] == i).mean()) if (y == i).any() else float("nan")
        for i, c in enumerate(classes)
    }


@torch.no_grad()
def _evaluate(
    forward, net, idx: np.ndarray, targets: np.ndarray, batch: int = 256
) -> tuple[float, np.ndarray]:  # noqa: ANN001
    net.eval()
    preds = [
        forward(idx[s : s + batch], augment=False)[0].argmax(1).numpy()
        for s in range(0, len(idx), batch)
    ]
    pred = np.concatenate(preds)
    return float((pred == targets).mean()), pred
