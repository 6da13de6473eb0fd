"""The static world: sky, distant scenery, road surface, lane markings and road furniture.

All static randomness comes from ``RoadSpec.texture_seed`` (never from the per-frame seed) so a
sequence keeps the same road, clouds and trees while ``RoadSpec.travelled_m`` slides the markings,
posts and trees past the camera at the ego's speed.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from gapcam.synth.geometry import (
    Camera,
    curve_offset,
    ground_maps,
    project_polygon,
    project_polygons,
)
from gapcam.synth.lighting import Lighting
from gapcam.synth.raster import (
    bilinear_wrap,
    depth_bins,
    disc3d,
    fill3d,
    fill_many3d,
    fill_uv,
    ground_strip,
)
from gapcam.synth.specs import Conditions, RoadSpec

GRASS = (62, 118, 96)
DRY = (96, 142, 168)
GRAVEL = (122, 126, 128)
#: Distance the far end of the road is drawn to (beyond it the verge meets the horizon).
ROAD_FAR_M = 600.0


@lru_cache(maxsize=32)
def _static_textures(seed: int) -> tuple[np.ndarray, ...]:
    """Periodic noise textures in road coordinates (patches, grain, longitudinal repairs)."""
    rng = np.random.default_rng([seed, 11])
    t1 = cv2.GaussianBlur(rng.standard_normal((32, 32)).astype(np.float32), (0, 0), 1.2)
    t2 = cv2.GaussianBlur(rng.standard_normal((64, 64)).astype(np.float32), (0, 0), 0.8)
    t3 = cv2.GaussianBlur(rng.standard_normal((1, 128)).astype(np.float32), (0, 0), 1.5)
    clouds = rng.random((6, 10)).astype(np.float32)
    clouds2 = rng.random((12, 20)).astype(np.float32)
    return tuple(t / (t.std() + 1e-6) for t in (t1, t2, t3)) + (clouds, clouds2)


def _horizon_line(cam: Camera) -> tuple[float, float]:
    return cam.horizon_v(0.0), cam.horizon_v(float(cam.width))


def draw_sky(img: np.ndarray, cam: Camera, cond: Conditions, light: Lighting, seed: int) -> None:
    """Sky gradient with clouds, computed coarse (it is smooth) and upsampled."""
    h, w = img.shape[:2]
    gw = 64
    gh = max(8, round(64 * h / w))
    uu, vv = np.meshgrid((np.arange(gw) + 0.5) * w / gw, (np.arange(gh) + 0.5) * h / gh)
    vh0, vh1 = _horizon_line(cam)
    vh = vh0 + (vh1 - vh0) * uu / w
    elev = (vh - vv) / cam.f
    t = np.clip(elev / 0.45, 0.0, 1.0) ** 0.6
    zen = np.array(light.sky_zenith, np.float32)
    hor = np.array(light.sky_horizon, np.float32)
    sky = hor * (1 - t[..., None]) + zen * t[..., None]
    *_, c1, c2 = _static_textures(seed)
    if cond.clouds > 0.02 and cond.fog_visibility_m is None:
        n = cv2.resize(c1, (gw, gh), interpolation=cv2.INTER_CUBIC) * 0.65
        n = n + cv2.resize(c2, (gw, gh), interpolation=cv2.INTER_CUBIC) * 0.35
        thr = 1.0 - cond.clouds
        m = np.clip((n - thr) / 0.18, 0.0, 1.0) * np.clip(elev / 0.05, 0.0, 1.0)
        if cond.time_of_day == "day":
            cc = np.array((246, 246, 246) if cond.weather == "clear" else (150, 150, 152))
        elif cond.time_of_day == "dusk":
            cc = np.array((150, 150, 205))
        else:
            cc = np.array((40, 36, 34)) * (0.4 if cond.ambient < 0.06 else 1.0)
        sky = sky * (1 - 0.85 * m[..., None]) + cc * (0.85 * m[..., None])
    img[:] = cv2.resize(sky.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR).astype(
        np.uint8
    )


def draw_scenery(
    img: np.ndarray, emissive: np.ndarray, cam: Camera, cond: Conditions, light: Lighting, seed: int
) -> None:
    """A distant silhouette (tree line, hills or city) sitting on the horizon, hazed."""
    rng = np.random.default_rng([seed, 12])
    w = cam.width
    n = 97
    u = np.linspace(0, 1, n)
    if cond.scenery == "hills":
        k = np.cumsum(rng.standard_normal(n)) * 0.004
        k = np.convolve(k - k.mean(), np.ones(9) / 9, mode="same")
        hgt = 0.03 + k + 0.015 * np.sin(u * 5 + rng.random() * 6)
        albedo, haze = (120, 118, 108), 0.6
    elif cond.scenery == "city":
        edges = np.cumsum(rng.uniform(0.02, 0.07, 40))
        levels = rng.uniform(0.01, 0.075, 40)
        hgt = levels[np.searchsorted(edges, u).clip(0, 39)]
        u = np.repeat(u, 2)[1:]
        hgt = np.repeat(hgt, 2)[:-1]
        albedo, haze = (112, 108, 104), 0.5
    else:
        hgt = 0.015 + 0.012 * rng.random(n) + 0.01 * np.sin(u * 9 + rng.random() * 6)
        albedo, haze = (52, 84, 62), 0.4
    hgt = np.maximum(hgt, 0.004)
    vh0, vh1 = _horizon_line(cam)
    vh = vh0 + (vh1 - vh0) * u
    top = np.stack([u * w, vh - hgt * cam.f], 1)
    bottom = np.array([[w, vh1 + 2.0], [0.0, vh0 + 2.0]])
    col = np.array(light.lit(albedo, 300.0), float)
    col = col * (1 - haze) + np.array(light.sky_horizon, float) * haze
    fill_uv(img, np.concatenate([top, bottom]), tuple(int(c) for c in col))
    if cond.scenery == "city" and light.night and cond.ambient >= 0.06:
        for _ in range(int(60 * rng.random()) + 20):
            x = rng.random()
            v0 = vh0 + (vh1 - vh0) * x
            hh = np.interp(x, u, hgt)
            y = v0 - rng.random() * hh * cam.f
            r = max(1, round(0.6 * cam.scale))
            cv2.circle(emissive, (int(x * w), int(y)), r, (60, 150, 210), -1)


def draw_ground(img: np.ndarray, cam: Camera, road: RoadSpec, light: Lighting) -> None:
    """Verge, paved surface, shoulders and lane markings (fog and texture come later)."""
    h, w = img.shape[:2]
    vh0, vh1 = _horizon_line(cam)
    verge = GRASS if road.verge == "grass" else DRY
    fill_uv(img, np.array([[0, vh0], [w, vh1], [w, h + 1], [0, h + 1]], float), light.lit(verge))
    zs = np.concatenate([[0.0], np.geomspace(0.4, ROAD_FAR_M, 40)])
    k = road.curvature
    asphalt = road.asphalt_bgr
    left_paved = road.barrier_x + (0.3 if road.barrier != "none" else 0.0)
    if road.barrier == "none":
        fill3d(img, cam, ground_strip(left_paved, left_paved + 0.7, zs, k), light.lit(GRAVEL))
    fill3d(img, cam, ground_strip(road.right_edge - 1.2, left_paved, zs, k), light.lit(asphalt))
    shoulder = tuple(min(255, int(c * 1.07)) for c in asphalt)
    if road.shoulder_left > 0.3:
        fill3d(img, cam, ground_strip(road.left_edge, left_paved, zs, k), light.lit(shoulder))
    draw_markings(img, cam, road, light)


def _marking_lines(road: RoadSpec) -> list[tuple[float, str]]:
    lines: list[tuple[float, str]] = []
    if road.lanes_right > 0:
        lines.append((road.boundary(-1), "dashed"))
    lines.append((road.right_edge, "edge"))
    for i in range(road.lanes_left):
        solid = i == 0 and road.solid_divider
        lines.append((road.boundary(i), "solid" if solid else "dashed"))
    lines.append((road.left_edge, "edge"))
    return lines


def draw_markings(img: np.ndarray, cam: Camera, road: RoadSpec, light: Lighting) -> None:
    zs = np.concatenate([[0.0], np.geomspace(0.4, 400.0, 40)])
    k = road.curvature
    for x, style in _marking_lines(road):
        color = light.lit(road.edge_bgr if style == "edge" else road.marking_bgr)
        half = 0.1 if style == "edge" else 0.075
        if style != "dashed":
            fill3d(img, cam, ground_strip(x - half, x + half, zs, k), color)
            continue
        period = road.dash_length + road.dash_gap
        phase = road.travelled_m % period
        dashes = []
        for j in range(-1, int(220 / period) + 1):
            z0 = phase + j * period
            dz = np.array([z0, z0 + road.dash_length])
            dashes.append(ground_strip(x - half, x + half, dz, k))
        fill_many3d(img, cam, dashes, color)


def finish_ground(
    img: np.ndarray,
    cam: Camera,
    road: RoadSpec,
    light: Lighting,
    shadow: np.ndarray,
    step: int,
) -> np.ndarray:
    """Perspective-correct asphalt/grass texture, tyre tracks, shadows and fog in one pass.

    Computed on the coarse ground grid of :func:`ground_maps` (``shadow`` has that size) and
    upsampled: texture and fog are low-frequency, so this costs a few ms even at 1280x720.
    """
    h, w = img.shape[:2]
    xg, zg = ground_maps(cam, step)
    t1, t2, t3, *_ = _static_textures(road.texture_seed)
    ground = np.isfinite(zg)
    z = np.where(ground, zg, 1e4)
    s = z - road.travelled_m
    xr = xg - curve_offset(z, road.curvature)
    left_paved = road.barrier_x + (0.3 if road.barrier != "none" else 0.0)
    paved = (xr > road.right_edge - 1.2) & (xr < left_paved)
    near = np.exp(-z / 60.0)
    n1 = bilinear_wrap(t1, xr / 1.6, s / 5.0)
    n2 = bilinear_wrap(t2, xr / 0.35, s / 0.9) * near
    n3 = bilinear_wrap(t3, np.zeros_like(s), s / 9.0)
    tracks = np.zeros_like(xr)
    for lane in ("right", "ego", "adjacent", "beyond"):
        if road.has_lane(lane):
            c = road.lane_center(lane)
            for dx, depth in ((-0.85, 0.07), (0.85, 0.07), (0.0, -0.03)):
                tracks += depth * np.exp(-(((xr - c - dx) / 0.32) ** 2))
    m_paved = 1.0 + 0.045 * n1 + 0.05 * n2 + 0.035 * n3 - tracks
    m_verge = 1.0 + 0.14 * n1 + 0.12 * n2
    mult = np.where(paved, m_paved, m_verge)
    mult = np.where(ground, mult, 1.0).astype(np.float32)
    dist = np.where(ground, np.hypot(z, xg), np.inf)
    fog = light.fog_array(dist)
    mult *= 1.0 - shadow.astype(np.float32) / 255.0
    a = cv2.resize(mult * (1.0 - fog), (w, h), interpolation=cv2.INTER_LINEAR)
    out = cv2.multiply(img, cv2.cvtColor(a, cv2.COLOR_GRAY2BGR), dtype=cv2.CV_8U)
    if light.visibility_m is not None:
        f = cv2.cvtColor(
            cv2.resize(fog, (w, h), interpolation=cv2.INTER_LINEAR), cv2.COLOR_GRAY2BGR
        )
        out = cv2.add(out, cv2.multiply(f, tuple(light.fog_bgr) + (0.0,)), dtype=cv2.CV_8U)
    return out


def draw_roadside(
    img: np.ndarray,
    emissive: np.ndarray,
    soft: np.ndarray,
    cam: Camera,
    road: RoadSpec,
    cond: Conditions,
    light: Lighting,
) -> None:
    """Trees, lamp posts and the barrier beyond the last lane, far to near."""
    rng = np.random.default_rng([road.texture_seed, 13])
    k = road.curvature
    travelled = road.travelled_m
    bx = road.barrier_x
    items: list[tuple[float, str, float, np.ndarray]] = []
    if road.trees > 0:
        count = int(road.trees * 8)
        s = rng.uniform(-300.0, 500.0, count)
        params = rng.random((count, 5))
        for si, p in zip(s, params, strict=True):
            items.append((si + travelled, "tree", si, p))
    if road.lamps:
        first = rng.uniform(0, 45)
        for j in range(-8, 14):
            si = first + 45.0 * j
            items.append((si + travelled, "lamp", si, np.zeros(5)))
    items.sort(key=lambda it: -it[0])
    draws: list[tuple[np.ndarray, tuple, np.ndarray]] = []  # polygon, colour, target layer
    for z, what, _s, p in items:
        if z < -2.0 or z > 450.0:
            continue
        off = float(curve_offset(z, k))
        d = math.hypot(z, bx + 5)
        if what == "tree":
            r = 1.8 + 2.2 * p[2]
            if cam.f * r / max(z, 1.0) < 0.6:
                continue  # sub-pixel: invisible, skip the work
            x = bx + 3.0 + 22.0 * p[0] ** 1.5 + off
            trunk = 2.0 + 2.5 * p[1]
            green = np.array([40 + 25 * p[3], 78 + 40 * p[3], 55 + 25 * p[4]])
            draws.append(
                (
                    _quad_z(x, 0.0, trunk + r * 0.5, 0.18 + 0.1 * p[2], z),
                    light.lit((40, 52, 62), d),
                    img,
                )
            )
            for dx, dy, rr, sh in (
                (0.0, 0.0, 1.0, 0.8),
                (-0.4 * r, 0.35 * r, 0.7, 1.0),
                (0.35 * r, 0.5 * r, 0.65, 1.15),
            ):
                draws.append(
                    (
                        disc3d(x + dx, trunk + r + dy, z, r * rr, 12, plane="z"),
                        light.lit(green, d, sh),
                        img,
                    )
                )
        else:
            x = bx + 0.9 + off
            top = 9.5
            grey = light.lit((128, 130, 130), d)
            draws.append((_quad_z(x, 0.0, top, 0.16, z), grey, img))
            arm = np.array(
                [
                    [x, top - 0.1, z],
                    [x - 2.2, top + 0.2, z],
                    [x - 2.2, top + 0.05, z],
                    [x, top - 0.25, z],
                ]
            )
            draws.append((arm, grey, img))
            head = np.array(
                [
                    [x - 1.6, top + 0.2, z - 0.25],
                    [x - 2.5, top + 0.15, z - 0.25],
                    [x - 2.5, top - 0.02, z + 0.25],
                    [x - 1.6, top + 0.05, z + 0.25],
                ]
            )
            if cond.street_lights and light.night:
                lamp = (80, 190, 255) if light.tint[2] > light.tint[0] else (235, 240, 250)
                f = 1.0 - light.fog(d)
                draws.append((head, (255, 255, 255), img))
                draws.append((head, tuple(int(c * max(f, 0.25)) for c in lamp), emissive))
                pool = disc3d(x - 3.0, 0.0, z, 6.5, 16, plane="y")
                draws.append((pool, tuple(int(c * 0.22 * f) for c in lamp), soft))
            else:
                draws.append((head, light.lit((90, 92, 95), d), img))
    uvs = project_polygons(cam, [dr[0] for dr in draws])
    for (_pts, color, layer), uv in zip(draws, uvs, strict=True):
        if layer is soft:
            uv = uv * (soft.shape[1] / cam.width, soft.shape[0] / cam.height)
        fill_uv(layer, uv, color)
    _draw_barrier(img, cam, road, light)


def _quad_z(x: float, y0: float, y1: float, width: float, z: float) -> np.ndarray:
    """A vertical rectangle facing the camera (constant z): posts, trunks, poles."""
    hw = width / 2
    return np.array([[x - hw, y0, z], [x + hw, y0, z], [x + hw, y1, z], [x - hw, y1, z]])


def _draw_barrier(img: np.ndarray, cam: Camera, road: RoadSpec, light: Lighting) -> None:
    k = road.curvature
    bx = road.barrier_x
    bins = depth_bins(0.0, 400.0, 14 if light.visibility_m is not None else 3)
    period = 4.0 if road.barrier == "guardrail" else 50.0
    phase = road.travelled_m % period
    posts = [phase + j * period for j in range(-1, int(90 / period))]
    for z0, z1 in reversed(bins):
        zs = np.linspace(z0, z1, 6)
        d = 0.5 * (z0 + z1)
        if road.barrier == "guardrail":
            for zp in posts:
                if z0 <= zp < z1:
                    xo = bx + 0.15 + float(curve_offset(zp, k))
                    fill3d(img, cam, _quad_z(xo, 0.0, 0.72, 0.1, zp), light.lit((70, 72, 72), zp))
            fill3d(img, cam, ground_strip(bx, 0, zs, k, 0.55, 0.68), light.lit((132, 136, 134), d))
            fill3d(img, cam, ground_strip(bx, 0, zs, k, 0.68, 0.8), light.lit((182, 186, 184), d))
        elif road.barrier == "concrete":
            fill3d(img, cam, ground_strip(bx, 0, zs, k, 0.0, 0.28), light.lit((140, 146, 150), d))
            fill3d(
                img,
                cam,
                ground_strip(bx + 0.12, 0, zs, k, 0.28, 0.84),
                light.lit((168, 175, 180), d),
            )
            fill3d(
                img,
                cam,
                ground_strip(bx + 0.12, bx + 0.34, zs, k, 0.84),
                light.lit((196, 202, 206), d),
            )
        else:
            for zp in posts:
                if z0 <= zp < z1:
                    xo = bx + 0.5 + float(curve_offset(zp, k))
                    fill3d(
                        img, cam, _quad_z(xo, 0.0, 1.0, 0.12, zp), light.lit((225, 228, 228), zp)
                    )
                    fill3d(img, cam, _quad_z(xo, 0.72, 0.9, 0.125, zp), light.lit((30, 30, 30), zp))


def draw_shadow_mask(mask: np.ndarray, cam: Camera, polys: list[tuple[np.ndarray, float]]) -> None:
    """Rasterise ground shadows (uint8 mask, 255 = black) on the coarse ground grid.

    Overlapping shadows take the maximum rather than adding up, as real ones do.
    """
    gh, gw = mask.shape
    sx, sy = gw / cam.width, gh / cam.height
    for pts, strength in polys:
        uv = project_polygon(cam, pts)
        if len(uv) >= 3:
            tmp = np.zeros_like(mask)
            fill_uv(tmp, uv * (sx, sy), int(255 * strength))
            np.maximum(mask, tmp, out=mask)
