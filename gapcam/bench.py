"""Per-stage timing of the pipeline (``gapcam bench``).

Prints medians of preprocess, inference, CAM and overlay for a frame of the given size, plus the
ratios that matter on a shared, noisy machine (all measured in the same run):

* decision path / pure inference, where the decision path = preprocess + inference + CAM box
  (what every frame costs);
* overlay / pure inference: drawing one overlay the way the node and replay do
  (:meth:`gapcam.stream.StreamProcessor.render` at ``overlay_scale`` of the frame, the node's
  ``overlay.scale`` default, with its reused buffers);
* with overlay / pure inference (what a frame costs while someone watches the overlay).

The full-size overlay (``Pipeline.render`` of the whole frame, as ``gapcam predict`` draws it) is
timed and printed too. "Pure inference" is ``backend.infer`` alone on an already preprocessed
batch.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from gapcam.node_settings import DEFAULT_OVERLAY
from gapcam.pipeline import Pipeline
from gapcam.preprocess import preprocess
from gapcam.stream import StreamProcessor

#: The node's default ``overlay.scale`` (NodeSettings, as cam_node.yaml writes it).
NODE_OVERLAY_SCALE = DEFAULT_OVERLAY.scale


def bench_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A synthetic rear-side scene (a realistic texture for the resize), or noise if the
    generator is unavailable."""
    try:
        from gapcam.synth import render_scene

        return render_scene(seed, size=(width, height))[0]
    except ImportError:  # pragma: no cover - the generator ships with the package
        return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def run_bench(
    model: str | Path,
    *,
    width: int = 1280,
    height: int = 720,
    iterations: int = 200,
    warmup: int = 20,
    backend: str = "auto",
    cam_threshold: float | None = None,
    overlay_scale: float = NODE_OVERLAY_SCALE,
) -> dict:
    pipe = Pipeline.from_model(model, backend, cam_threshold=cam_threshold)
    stream = StreamProcessor(pipe)
    image = bench_image(width, height)
    batch = preprocess(image, pipe.card.input)
    out = stream.process("bench", image, 0, "")
    for _ in range(warmup):
        pipe.backend.infer(batch)
        pipe.render(image, pipe.analyze(image))
        stream.render(image, out, scale=overlay_scale)
    # Each stage in its own block of iterations, so one stage's cache footprint (e.g. drawing a
    # full-resolution overlay) does not slow the next one down and skew the ratios.
    pure, stages, overlay, full = [], [], [], []
    for _ in range(iterations):
        t0 = time.perf_counter()
        pipe.backend.infer(batch)
        pure.append((time.perf_counter() - t0) * 1e3)
    for _ in range(iterations):
        stages.append(pipe.analyze(image).timings_ms)
    for _ in range(iterations):
        t1 = time.perf_counter()
        stream.render(image, out, scale=overlay_scale)
        overlay.append((time.perf_counter() - t1) * 1e3)
    r = pipe.analyze(image)
    for _ in range(iterations):
        t1 = time.perf_counter()
        pipe.render(image, r)
        full.append((time.perf_counter() - t1) * 1e3)
    med = {k: statistics.median(s[k] for s in stages) for k in stages[0]}
    med["overlay"] = statistics.median(overlay)
    full_ms = statistics.median(full)
    pure_ms = statistics.median(pure)
    decision = med["preprocess"] + med["inference"] + med["cam"]
    return {
        "model_id": pipe.backend.model_id,
        "backend": pipe.backend.describe(),
        "image": f"{width}x{height}",
        "iterations": iterations,
        "median_ms": med,
        "pure_inference_ms": pure_ms,
        "decision_path_ms": decision,
        "with_overlay_ms": decision + med["overlay"],
        "overlay_scale": overlay_scale,
        "overlay_size": f"{int(width * overlay_scale)}x{int(height * overlay_scale)}",
        "overlay_full_size_ms": full_ms,
        "ratio_decision_vs_inference": decision / pure_ms,
        "ratio_overlay_only_vs_inference": med["overlay"] / pure_ms,
        "ratio_overlay_vs_inference": (decision + med["overlay"]) / pure_ms,
        "ratio_full_size_overlay_vs_inference": full_ms / pure_ms,
    }


def format_bench(res: dict) -> str:
    lines = [
        f"gapcam bench: {res['backend']}, {res['image']} input, {res['iterations']} iterations (medians)",
    ]
    for k, v in res["median_ms"].items():
        note = f"  (node overlay: {res['overlay_size']}, reused buffers)" if k == "overlay" else ""
        lines.append(f"  {k:<12} {v:8.3f} ms{note}")
    lines += [
        f"  {'overlay full':<12} {res['overlay_full_size_ms']:8.3f} ms  ({res['image']}, new image each time)",
        f"  {'pure infer':<12} {res['pure_inference_ms']:8.3f} ms  (backend.infer on a preprocessed batch)",
        f"  decision path (preprocess+inference+cam) / pure inference = {res['ratio_decision_vs_inference']:.2f}",
        f"  overlay / pure inference                                 = {res['ratio_overlay_only_vs_inference']:.2f}",
        f"  with overlay / pure inference                            = {res['ratio_overlay_vs_inference']:.2f}",
        f"  full-size overlay / pure inference                       = {res['ratio_full_size_overlay_vs_inference']:.2f}",
    ]
    return "\n".join(lines)
