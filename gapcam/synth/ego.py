"""The ego vehicle's own flank, which a mirror camera always sees along one image edge.

Real rear-side cameras show a strip of their own car (door, rear window, wheel arch, tail lamp)
converging towards the vanishing point; a classifier must learn to ignore it, so it is drawn in 3D
with the same camera as everything else and stays fixed in the image across a sequence.
"""

from __future__ import annotations

import cv2
import numpy as np

from gapcam.synth.geometry import Camera
from gapcam.synth.lighting import Lighting
from gapcam.synth.raster import disc3d, fill3d, fill_uv
from gapcam.synth.specs import EgoSpec


def _panel(x: float, y0: float, y1: float, z0: float, z1: float, taper: float = 0.0) -> np.ndarray:
    """A band of the flank in the plane ``x`` between heights ``y0``..``y1`` and ``z0``..``z1``."""
    return np.array([[x, y0, z0], [x, y1, z0], [x, y1, z1 - taper], [x, y0, z1]])


def ego_shadow(ego: EgoSpec, sun_dx: float) -> np.ndarray:
    """The ego's own shadow on the road beside the door (a ground polygon)."""
    x0 = ego.side_x
    x1 = ego.side_x + 0.25 + max(sun_dx, 0.0)
    return np.array([[x0, 0, -1.0], [x1, 0, -1.0], [x1, 0, ego.tail_m - 0.2], [x0, 0, ego.tail_m]])


def draw_ego(
    img: np.ndarray,
    emissive: np.ndarray,
    cam: Camera,
    ego: EgoSpec,
    light: Lighting,
    lit_tail: bool,
) -> np.ndarray:
    """Paint the ego flank; returns its outline (pixels) so callers can judge occlusion."""
    x = ego.side_x
    t = ego.tail_m
    belt = ego.belt_height
    col = np.array(ego.color, float)
    sky = np.array(light.sky_horizon, float)
    outline: list[np.ndarray] = []

    def shade(k: float, refl: float = 0.0) -> tuple[int, int, int]:
        return light.lit(col * (1 - refl) + sky * refl, 1.0, k)

    bands = [
        (0.22, 0.42, x - 0.06, shade(0.45)),
        (0.42, 0.6, x - 0.01, shade(0.62, 0.05)),
        (0.6, 0.66, x, shade(0.95, 0.35)),  # reflection of the horizon in the convex door
        (0.66, belt - 0.04, x - 0.02, shade(0.85, 0.15)),
        (belt - 0.04, belt, x - 0.04, shade(1.05, 0.3)),
    ]
    for y0, y1, xb, c in bands:
        outline.append(fill3d(img, cam, _panel(xb, y0, y1, -2.0, t, 0.0), c))
    wz = t - 0.85
    fill3d(img, cam, disc3d(x + 0.01, 0.34, wz, 0.43, 16), light.lit((14, 14, 16), 1.0))
    fill3d(img, cam, disc3d(x - 0.02, 0.33, wz, 0.33, 16), light.lit((24, 24, 26), 1.0))
    fill3d(img, cam, disc3d(x - 0.03, 0.33, wz, 0.2, 12), light.lit((110, 112, 116), 1.0))
    # Window, pillar and roof above the belt line.
    glass = light.lit((36, 34, 32) * np.array(1.0) * 0.65 + sky * 0.35, 1.0)
    win = np.array(
        [
            [x - 0.06, belt, -2.0],
            [x - 0.16, 1.36, -2.0],
            [x - 0.16, 1.36, t - 1.35],
            [x - 0.06, belt, t - 0.85],
        ]
    )
    outline.append(fill3d(img, cam, win, glass))
    pillar = np.array(
        [
            [x - 0.06, belt, t - 0.85],
            [x - 0.16, 1.36, t - 1.35],
            [x - 0.2, 1.4, t - 0.5],
            [x - 0.05, belt, t - 0.1],
        ]
    )
    outline.append(fill3d(img, cam, pillar, shade(0.9, 0.2)))
    roof = np.array(
        [
            [x - 0.16, 1.36, -2.0],
            [x - 0.24, 1.48, -2.0],
            [x - 0.24, 1.44, t - 0.6],
            [x - 0.16, 1.36, t - 1.35],
        ]
    )
    outline.append(fill3d(img, cam, roof, shade(0.8, 0.3)))
    fill3d(
        img,
        cam,
        _panel(x - 0.05, belt - 0.015, belt + 0.015, -2.0, t - 0.9),
        light.lit((20, 20, 22)),
    )
    tail = _panel(x - 0.05, 0.72, 0.92, t - 0.3, t - 0.02)
    if lit_tail:
        uv = fill3d(img, cam, tail, (60, 60, 255))
        fill_uv(emissive, uv, (20, 20, 160))
    else:
        fill3d(img, cam, tail, light.lit((40, 40, 150), 1.0))
    outline = [o for o in outline if len(o)]
    return np.concatenate(outline) if outline else np.zeros((0, 2))


def draw_mirror_housing(img: np.ndarray, ego: EgoSpec, light: Lighting) -> None:
    """The out-of-focus mirror housing that often intrudes into a corner of the image."""
    if ego.housing is None:
        return
    h, w = img.shape[:2]
    r = ego.housing_size * w
    cy = h + 0.25 * r if ego.housing == "bottom" else -0.25 * r
    pad = int(r * 1.4) + 4
    y0 = max(0, int(cy - pad))
    y1 = min(h, int(cy + pad))
    x1 = min(w, pad)
    if y1 <= y0 or x1 <= 0:
        return
    roi = img[y0:y1, 0:x1]
    layer = roi.copy()
    c = light.lit(np.array(ego.color, float) * 0.5, 0.5)
    cv2.ellipse(
        layer,
        (int(-0.2 * r), int(cy - y0)),
        (int(r * 1.1), int(r * 0.8)),
        0,
        0,
        360,
        c,
        -1,
        cv2.LINE_AA,
    )
    mask = np.zeros(roi.shape[:2], np.float32)
    cv2.ellipse(
        mask, (int(-0.2 * r), int(cy - y0)), (int(r * 1.1), int(r * 0.8)), 0, 0, 360, 1.0, -1
    )
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, r * 0.15))[..., None]
    roi[:] = (roi * (1 - mask) + layer * mask).astype(np.uint8)
