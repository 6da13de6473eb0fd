"""Short clips with one story each, for demos, bags and temporal checks.

The road, the light and every vehicle's paint stay fixed across frames (one scene description);
only positions, the distance driven and the per-frame sensor noise change, and vehicle motion is
a smooth function of time. Each frame is labelled by the same rules as single images.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import numpy as np

from gapcam.synth.labels import ViewFacts, judge
from gapcam.synth.sampling import (
    occluders,
    sample_camera,
    sample_conditions,
    sample_effects,
    sample_ego,
    sample_kind,
    sample_road,
)
from gapcam.synth.scene import _check_size, render
from gapcam.synth.specs import SceneSpec, VehicleSpec
from gapcam.synth.vehicles import sample_vehicle

#: approach: a vehicle closes in from far behind in the adjacent lane until alongside (free ->
#: blocked); overtake: a faster vehicle near behind passes and leaves the view ahead (blocked ->
#: free); pass: the ego overtakes a slower vehicle that appears from ahead and falls back (free ->
#: blocked -> free); deteriorate: fog thickens or dirt builds up on the lens (-> undefined);
#: freeze: an approach during which the camera link freezes and repeats its last frame
#: (-> undefined with cause ``sensor_fault``, ``conditions.sensor_fault == "frozen"``; only a
#: temporal check can see this one, a single frame looks normal).
SEQUENCE_KINDS = ("approach", "overtake", "pass", "deteriorate", "freeze")


def _base(kind: str, seed: int, side: str) -> tuple[SceneSpec, np.random.Generator, float]:
    rng = np.random.default_rng([seed, 7, SEQUENCE_KINDS.index(kind)])
    camera = sample_camera(rng)
    ego = sample_ego(rng)
    road = sample_road(rng, ego)
    cond = sample_conditions(rng, camera)
    if kind == "deteriorate":
        cond = replace(
            cond,
            weather="overcast" if cond.weather == "fog" else cond.weather,
            fog_visibility_m=None,
            sun=None,
            glare=0.0,
        )
    night = cond.time_of_day == "night"
    spec = SceneSpec(
        seed=seed,
        side=side,
        camera=camera,
        road=road,
        ego=ego,
        vehicles=(),
        conditions=cond,
        effects=replace(sample_effects(rng, night), motion_blur=0.0),
        noise_seed=0,
    )
    ego_speed = float(rng.uniform(22.0, 33.0))
    return spec, rng, ego_speed


def _main_track(kind: str, rng: np.random.Generator, v: VehicleSpec):
    """Distance of the story's vehicle as a smooth function of progress p in [0, 1]."""
    if kind in ("approach", "freeze"):
        d0, d1 = rng.uniform(50.0, 70.0), rng.uniform(-0.4 * v.length, 1.0)
        return lambda p: d1 + (d0 - d1) * (1.0 - p) ** 2  # decelerates as it comes alongside
    if kind == "overtake":
        d0, d1 = rng.uniform(13.0, 19.0), -(v.length + rng.uniform(6.0, 12.0))
        return lambda p: d0 + (d1 - d0) * (0.5 * p + 0.5 * p * p)  # still accelerating
    if kind == "pass":
        d0, d1 = -(v.length + rng.uniform(3.0, 6.0)), rng.uniform(28.0, 45.0)
        return lambda p: d0 + (d1 - d0) * p
    d0, d1 = rng.uniform(60.0, 80.0), rng.uniform(24.0, 30.0)
    return lambda p: d0 + (d1 - d0) * p


def generate_sequence(
    kind: str,
    seed: int,
    n_frames: int = 60,
    fps: float = 15.0,
    side: str = "left",
    size: tuple[int, int] = (640, 480),
) -> list[tuple[np.ndarray, dict]]:
    """Render a clip: a list of (BGR image, meta); meta adds ``frame``, ``t`` and ``sequence``."""
    if kind not in SEQUENCE_KINDS:
        raise ValueError(f"kind must be one of {SEQUENCE_KINDS}, got {kind!r}")
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    if n_frames < 1 or fps <= 0:
        raise ValueError("n_frames must be >= 1 and fps > 0")
    size = _check_size(size)
    base, rng, ego_speed = _base(kind, int(seed), side)
    cond0 = base.conditions
    lights = cond0.time_of_day != "day" or rng.random() < 0.3
    main = sample_vehicle(rng, sample_kind(rng), "adjacent", 0.0, lights)
    track = _main_track(kind, rng, main)
    extras: list[tuple[VehicleSpec, float, float]] = []  # vehicle, start distance, relative speed
    if rng.random() < 0.5:
        extras.append(
            (
                sample_vehicle(rng, sample_kind(rng), "ego", 0.0, lights),
                rng.uniform(12, 40),
                rng.uniform(-1.0, 1.0),
            )
        )
    if base.road.has_lane("beyond") and rng.random() < 0.6:
        extras.append(
            (
                sample_vehicle(rng, sample_kind(rng), "beyond", 0.0, lights),
                rng.uniform(10, 90),
                rng.uniform(-6.0, 4.0),
            )
        )
    mode = ("fog" if rng.random() < 0.5 else "dirt") if kind == "deteriorate" else None
    dirt = occluders(rng, base, size, "mud") if mode == "dirt" else ()
    freeze_at = max(1, int(n_frames * rng.uniform(0.3, 0.5))) if kind == "freeze" else n_frames
    duration = max(n_frames - 1, 1) / fps
    frames: list[tuple[np.ndarray, dict]] = []
    for i in range(n_frames):
        t = i / fps
        p = i / max(n_frames - 1, 1)
        if i >= freeze_at:
            frames.append(_frozen(frames[freeze_at - 1], i, t))
            continue
        vehicles = [replace(main, distance_m=float(track(p)))]
        for v, d0, speed in extras:
            wobble = 0.8 * math.sin(2 * math.pi * t / 5.0 + d0)
            vehicles.append(replace(v, distance_m=float(d0 + speed * t + wobble)))
        cond = cond0
        if mode == "fog":
            vis = 400.0 * (8.0 / 400.0) ** p
            cond = replace(cond, weather="fog", fog_visibility_m=float(vis), rain=0.0)
        elif mode == "dirt":
            grow = min(1.0, p * 1.25)
            blobs = tuple(replace(b, rx=b.rx * grow, ry=b.ry * grow) for b in dirt if grow > 0.02)
            cond = replace(cond, lens_kind="mud" if blobs else None, lens=blobs)
        spec = replace(
            base,
            vehicles=tuple(vehicles),
            conditions=cond,
            road=replace(base.road, travelled_m=base.road.travelled_m + ego_speed * t),
            noise_seed=int(np.random.SeedSequence([int(seed), 8, i]).generate_state(1)[0]),
        )
        img, meta = render(spec, size)
        meta.update(frame=i, t=t, sequence=kind, fps=fps, duration_s=duration)
        frames.append((img, meta))
    return frames


def _frozen(last: tuple[np.ndarray, dict], i: int, t: float) -> tuple[np.ndarray, dict]:
    """The stale frame again, relabelled by the rules with a ``frozen`` sensor fault."""
    img, meta = last
    meta = copy.deepcopy(meta)
    facts = ViewFacts(meta["size"][0], True, 0.0, 1.0, 0.0, None, "frozen")
    j = judge([], facts)
    meta.update(frame=i, t=t, label=j.label, blocking_box=None)
    meta["conditions"].update(sensor_fault="frozen", undefined_causes=list(j.causes))
    for v in meta["vehicles"]:
        v.pop("blocking", None)
    return img.copy(), meta


__all__ = ["SEQUENCE_KINDS", "generate_sequence"]
