"""Render a scene description to a BGR image plus JSON-ready ground truth.

Drawing order follows depth and optics: sky and scenery, ground (textured, shadowed, fogged in
one pass), roadside furniture, vehicles far to near, the ego flank, then lights (bloom), weather,
lens, camera and sensor. The right camera is the left camera's image mirrored, boxes included.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from gapcam.labels import UNDEFINED
from gapcam.synth.analysis import analysis_size, assess, road_summary
from gapcam.synth.background import (
    draw_ground,
    draw_roadside,
    draw_scenery,
    draw_shadow_mask,
    draw_sky,
    finish_ground,
)
from gapcam.synth.effects import apply_camera, apply_fault, apply_glare, apply_lens, apply_rain
from gapcam.synth.ego import draw_ego, draw_mirror_housing, ego_shadow
from gapcam.synth.geometry import ground_maps
from gapcam.synth.lighting import make_lighting
from gapcam.synth.raster import fill_uv
from gapcam.synth.roadside import is_roadside, render_roadside
from gapcam.synth.sampling import sample_scene, side_and_label
from gapcam.synth.specs import SceneSpec
from gapcam.synth.vehicles import draw_vehicle, glow_blur, shadow_polygons


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    w, h = int(size[0]), int(size[1])
    if w < 32 or h < 32:
        raise ValueError(f"size must be at least 32x32 (width, height), got {size!r}")
    return w, h


def _shadow_strength(spec: SceneSpec) -> tuple[float, float]:
    c = spec.conditions
    if c.time_of_day == "night":
        return 0.3, 0.0
    base = {"clear": 0.55, "overcast": 0.38, "rain": 0.32, "fog": 0.3}[c.weather]
    if c.time_of_day == "dusk":
        base *= 0.75
    sun_dx = 0.0 if c.weather != "clear" else 0.35 * math.sin(spec.road.texture_seed % 7)
    return base, sun_dx


def render(spec: SceneSpec, size: tuple[int, int]) -> tuple[np.ndarray, dict]:
    """Draw ``spec`` at ``size`` = (width, height); returns (BGR uint8 image, metadata dict)."""
    w, h = _check_size(size)
    a = assess(spec, (w, h))
    cam = a.camera
    cond = spec.conditions
    road = spec.road
    light = make_lighting(cond)
    img = np.empty((h, w, 3), np.uint8)
    emissive = np.zeros((h, w, 3), np.uint8)  # light sources: added sharp, plus bloom
    soft = np.zeros((max(8, h // 4), max(8, w // 4), 3), np.uint8)  # lit road: only blurred

    draw_sky(img, cam, cond, light, road.texture_seed)
    draw_scenery(img, emissive, cam, cond, light, road.texture_seed)
    draw_ground(img, cam, road, light)
    step = max(2, w // 160)
    gx, _ = ground_maps(cam, step)
    shadow = np.zeros(gx.shape, np.uint8)
    strength, sun_dx = _shadow_strength(spec)
    polys = [(ego_shadow(spec.ego, sun_dx), strength * 0.8)]
    for pv in a.placed:
        if pv.parts:
            polys += shadow_polygons(pv, road, strength, sun_dx)
    draw_shadow_mask(shadow, cam, polys)
    shadow = cv2.GaussianBlur(shadow, (0, 0), 0.7)
    img = finish_ground(img, cam, road, light, shadow, step)
    draw_roadside(img, emissive, soft, cam, road, cond, light)

    wet = cond.weather == "rain"
    side_shade = 0.7 + 0.1 * math.cos(road.texture_seed % 5)
    for pv in sorted(a.placed, key=lambda p: -p.distance):
        if pv.parts:
            draw_vehicle(img, emissive, soft, cam, pv, light, wet, side_shade)
    ego_uv = draw_ego(
        img, emissive, cam, spec.ego, light, lit_tail=light.night or cond.ambient < 0.5
    )
    draw_mirror_housing(img, spec.ego, light)

    if soft.any():
        sigma = max(1.0, 0.012 * soft.shape[1])
        lit = cv2.resize(cv2.GaussianBlur(soft, (0, 0), sigma), (w, h))
        img = cv2.add(img, lit)
    if emissive.any():
        fog = 0.0 if cond.fog_visibility_m is None else min(1.0, 60.0 / cond.fog_visibility_m)
        glow = glow_blur(emissive, cam, 5.0 + 14.0 * fog)
        img = cv2.add(img, emissive)
        img = cv2.addWeighted(img, 1.0, glow, 1.4 + 2.0 * fog, 0.0)
    img = apply_rain(img, cond.rain, cond.ambient, spec.noise_seed)
    img = apply_glare(img, cond.sun, cond.glare)
    img = apply_lens(img, cond, cond.ambient)
    img = apply_camera(img, spec.effects, light.night, spec.noise_seed)
    img = apply_fault(img, cond.sensor_fault, spec.noise_seed)

    meta = _meta(spec, a, (w, h), ego_uv)
    if spec.side == "right":
        img = cv2.flip(img, 1)
        for v in meta["vehicles"]:
            x0, y0, x1, y1 = v["box"]
            v["box"] = [w - x1, y0, w - x0, y1]
        if meta["blocking_box"] is not None:
            x0, y0, x1, y1 = meta["blocking_box"]
            meta["blocking_box"] = [w - x1, y0, w - x0, y1]
    return img, meta


def _ego_mask(spec: SceneSpec, size: tuple[int, int], ego_uv: np.ndarray) -> np.ndarray:
    aw, ah = analysis_size(size)
    mask = np.zeros((ah, aw), np.uint8)
    if len(ego_uv) >= 3:
        hull = cv2.convexHull(np.clip(ego_uv, -1e5, 1e5).astype(np.float32))
        fill_uv(mask, hull.reshape(-1, 2) * (aw / size[0], ah / size[1]), 1, aa=False)
    return mask


def _meta(spec: SceneSpec, a, size: tuple[int, int], ego_uv: np.ndarray) -> dict:
    w, h = size
    aw, ah = analysis_size(size)
    ego = _ego_mask(spec, size, ego_uv)
    vehicles = []
    blocking_box = None
    for i, (v, box) in enumerate(zip(spec.vehicles, a.boxes, strict=True)):
        if box is None:
            continue
        x0, y0 = int(box[0] * aw / w), int(box[1] * ah / h)
        x1, y1 = max(x0 + 1, math.ceil(box[2] * aw / w)), max(y0 + 1, math.ceil(box[3] * ah / h))
        hidden = float(ego[y0:y1, x0:x1].mean()) if ego[y0:y1, x0:x1].size else 0.0
        if hidden > 0.97:
            continue  # entirely behind the ego's own flank
        entry = {
            "box": list(box),
            "lane": v.lane,
            "distance_m": round(v.distance_m, 2),
            "kind": v.kind,
            "length_m": round(v.length, 2),
            "visible_frac": round(1.0 - hidden, 2),
        }
        if i == a.judgement.blocking_index:
            blocking_box = list(box)
            entry["blocking"] = True
        vehicles.append(entry)
    c = spec.conditions
    fx = spec.effects
    cam = spec.camera
    conditions = {
        "time_of_day": c.time_of_day,
        "weather": c.weather,
        "illumination": round(c.ambient, 3),
        "street_lights": c.street_lights,
        "fog_visibility_m": None if c.fog_visibility_m is None else round(c.fog_visibility_m, 1),
        "rain": round(c.rain, 2),
        "sun": None if c.sun is None else [round(c.sun[0], 3), round(c.sun[1], 3)],
        "glare": round(a.facts.glare, 3),
        "lens": c.lens_kind,
        "lens_coverage": round(a.facts.lens_coverage, 3),
        "sensor_fault": c.sensor_fault,
        "undefined_causes": list(a.judgement.causes),
        "scenery": c.scenery,
        "road": road_summary(spec.road),
        "camera": {
            "hfov_deg": round(cam.hfov_deg, 2),
            "yaw_deg": round(cam.yaw_deg, 2),
            "horizon_frac": round(cam.horizon_frac, 3),
            "roll_deg": round(cam.roll_deg, 2),
            "height_m": round(cam.height_m, 3),
        },
        "effects": {
            "exposure": round(fx.exposure, 3),
            "noise": round(fx.noise, 2),
            "blur": round(fx.blur, 2),
            "motion_blur": round(fx.motion_blur, 2),
            "jpeg_quality": fx.jpeg_quality,
            "vignetting": round(fx.vignetting, 2),
        },
    }
    return {
        "label": a.judgement.label,
        "side": spec.side,
        "seed": int(spec.seed),
        "size": [w, h],
        "vehicles": vehicles,
        "blocking_box": blocking_box,
        "conditions": conditions,
    }


def render_scene(
    seed: int,
    size: tuple[int, int] = (224, 224),
    side: str | None = None,
    label: str | None = None,
) -> tuple[np.ndarray, dict]:
    """One random rear-side camera image and its ground truth.

    ``size`` is (width, height). ``side`` (``"left"``/``"right"``) and ``label`` (``"blocked"``,
    ``"free"``, ``"undefined"``) are drawn from the seed when None (each class a third).
    """
    size = _check_size(size)
    seed = int(seed)
    side, label = side_and_label(seed, side, label)
    # Some undefined scenes are roadside views (gapcam.synth.roadside) instead of a road, decided
    # by the seed alone: a data set's class plan is unchanged, and no road scene is sampled.
    if label == UNDEFINED and is_roadside(seed):
        return render_roadside(seed, size, side)
    return render(sample_scene(seed, size, side, label), size)
