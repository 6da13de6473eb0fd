"""Small drawing helpers: project a 3D polygon and fill it anti-aliased, build road strips.

One place for the OpenCV fixed-point details so the scene modules only speak in metres.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from gapcam.synth.geometry import Camera, curve_offset, project_polygon, project_polygons, to_fixed

SHIFT = 4


def fill_uv(img: np.ndarray, uv: np.ndarray, color: tuple, aa: bool = True) -> None:
    """Fill a projected polygon (pixel coords, continuous) if it has an area."""
    if len(uv) < 3:
        return
    cv2.fillPoly(img, [to_fixed(uv, SHIFT)], color, cv2.LINE_AA if aa else cv2.LINE_8, SHIFT)


def fill_many3d(img: np.ndarray, cam: Camera, polys: list[np.ndarray], color: tuple) -> None:
    """Fill many non-overlapping world polygons of one colour (dashes, posts) in one call."""
    uvs = [to_fixed(uv, SHIFT) for uv in project_polygons(cam, polys) if len(uv) >= 3]
    if uvs:
        cv2.fillPoly(img, uvs, color, cv2.LINE_AA, SHIFT)


def fill3d(
    img: np.ndarray, cam: Camera, pts: np.ndarray, color: tuple, aa: bool = True
) -> np.ndarray:
    """Project (with near-plane clipping) and fill a world polygon; returns its pixel outline."""
    uv = project_polygon(cam, pts)
    fill_uv(img, uv, color, aa)
    return uv


def ground_strip(
    x0: float, x1: float, zs: np.ndarray, curvature: float, y0: float = 0.0, y1: float | None = None
) -> np.ndarray:
    """A polygon along the road between lateral positions ``x0`` and ``x1``, following the curve.

    With ``y1`` given the strip is vertical instead: a barrier face at ``x0``, ``y0`` to ``y1``.
    """
    off = curve_offset(zs, curvature)
    if y1 is None:
        a = np.stack([x0 + off, np.full_like(zs, y0), zs], 1)
        b = np.stack([x1 + off, np.full_like(zs, y0), zs], 1)[::-1]
    else:
        a = np.stack([x0 + off, np.full_like(zs, y0), zs], 1)
        b = np.stack([x0 + off, np.full_like(zs, y1), zs], 1)[::-1]
    return np.concatenate([a, b], 0)


def disc3d(cx: float, cy: float, cz: float, r: float, n: int = 14, plane: str = "x") -> np.ndarray:
    """A circle of radius ``r`` in a plane of constant x (wheels seen from the side), y (a pool
    of light on the road) or z (facing the camera)."""
    c, s = _unit_circle(n)
    if plane == "x":
        return np.stack([np.full(n, cx), cy + r * s, cz + r * c], 1)
    if plane == "y":
        return np.stack([cx + r * c, np.full(n, cy), cz + r * s], 1)
    return np.stack([cx + r * c, cy + r * s, np.full(n, cz)], 1)


@lru_cache(maxsize=16)
def _unit_circle(n: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    return np.cos(t), np.sin(t)


def depth_bins(z0: float, z1: float, n: int) -> list[tuple[float, float]]:
    """Geometric distance bins: long objects get a per-bin fog factor without per-pixel depth."""
    edges = np.geomspace(max(z0, 0.3), z1, n + 1)
    edges[0] = z0
    return list(zip(edges[:-1], edges[1:], strict=True))


def bilinear_wrap(tex: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Sample a periodic 2D texture at fractional texel coordinates (vectorised)."""
    h, w = tex.shape
    u0 = np.floor(u)
    v0 = np.floor(v)
    fu = (u - u0).astype(np.float32)
    fv = (v - v0).astype(np.float32)
    iu = u0.astype(np.int64) % w
    iv = v0.astype(np.int64) % h
    iu1 = (iu + 1) % w
    iv1 = (iv + 1) % h
    top = tex[iv, iu] * (1 - fu) + tex[iv, iu1] * fu
    bot = tex[iv1, iu] * (1 - fu) + tex[iv1, iu1] * fu
    return top * (1 - fv) + bot * fv
