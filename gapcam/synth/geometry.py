"""Pinhole geometry of a rear-side (mirror) camera over a flat road.

World frame, in metres, for the LEFT camera (the right camera is rendered as its mirror image):
``x`` lateral, positive towards the ego vehicle's left (the adjacent lane); ``y`` height above the
road; ``z`` longitudinal distance *behind* the camera (positive = behind, negative = ahead). The
camera sits at ``(0, height_m, 0)`` below the left mirror, looks backwards, is turned outwards
(``yaw``) so the adjacent lane fills the image, and pitched down so the horizon lands where the
spec asks. Everything is drawn by projecting 3D polygons, so sizes, positions and the vanishing
point stay consistent with each other and with the ground-truth boxes at every image size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

#: Points closer than this in front of the lens are clipped away (projection blows up near 0).
NEAR_PLANE_M = 0.2


@dataclass(frozen=True)
class Camera:
    """Intrinsics and pose of one rendered view. Frozen so it can key caches."""

    width: int
    height: int
    hfov_deg: float
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    height_m: float

    @cached_property
    def f(self) -> float:
        """Focal length in pixels from the horizontal field of view (square pixels)."""
        return (self.width / 2.0) / math.tan(math.radians(self.hfov_deg) / 2.0)

    @property
    def cx(self) -> float:
        return self.width / 2.0

    @property
    def cy(self) -> float:
        return self.height / 2.0

    @property
    def scale(self) -> float:
        """Pixel scale relative to a 224 px wide image: keeps strokes and blurs size-invariant."""
        return self.width / 224.0

    @cached_property
    def rotation(self) -> np.ndarray:
        """Rows are the camera's right, down and forward axes expressed in world coordinates."""
        psi, th, ro = (math.radians(a) for a in (self.yaw_deg, self.pitch_deg, self.roll_deg))
        fwd = np.array([math.sin(psi), 0.0, math.cos(psi)])
        right = np.array([math.cos(psi), 0.0, -math.sin(psi)])
        down = np.array([0.0, -1.0, 0.0])
        fwd, down = (
            fwd * math.cos(th) + down * math.sin(th),
            down * math.cos(th) - fwd * math.sin(th),
        )
        right, down = (
            right * math.cos(ro) + down * math.sin(ro),
            -right * math.sin(ro) + down * math.cos(ro),
        )
        return np.stack([right, down, fwd])

    def to_camera(self, pts: np.ndarray) -> np.ndarray:
        """World points (N, 3) -> camera coordinates (N, 3): X right, Y down, Z forward."""
        p = np.asarray(pts, dtype=np.float64) - (0.0, self.height_m, 0.0)
        return p @ self.rotation.T

    def project_camera(self, pc: np.ndarray) -> np.ndarray:
        """Camera coordinates with Z > 0 -> pixel coordinates (N, 2), continuous (0..W, 0..H)."""
        z = pc[:, 2]
        return np.stack([self.cx + self.f * pc[:, 0] / z, self.cy + self.f * pc[:, 1] / z], 1)

    def project(self, pts: np.ndarray) -> np.ndarray:
        """World points -> pixels; points behind the near plane give NaN."""
        pc = self.to_camera(pts)
        uv = self.project_camera(np.where(pc[:, 2:3] > NEAR_PLANE_M, pc, np.nan))
        return uv

    def horizon_v(self, u: float) -> float:
        """Image row of the horizon at column ``u`` (handles roll)."""
        r = self.rotation
        # A ground-parallel direction d satisfies dot(down_world_up, ...) == 0: solve for v.
        # Ray (a, b, 1) in camera coords maps to world r.T @ ray; its y component must vanish.
        a = (u - self.cx) / self.f
        b = -(r[0, 1] * a + r[2, 1]) / r[1, 1]
        return self.cy + self.f * b


def make_camera(
    width: int,
    height: int,
    hfov_deg: float,
    yaw_deg: float,
    horizon_frac: float,
    roll_deg: float,
    height_m: float,
) -> Camera:
    """Build a camera whose horizon sits at ``horizon_frac`` of the image height.

    Fixing the horizon fraction (not the pitch) keeps the framing alike across aspect ratios.
    """
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    pitch = math.degrees(math.atan((height / 2.0 - horizon_frac * height) / f))
    return Camera(width, height, hfov_deg, yaw_deg, pitch, roll_deg, height_m)


def clip_near(pc: np.ndarray, near: float = NEAR_PLANE_M) -> np.ndarray:
    """Sutherland-Hodgman clip of a polygon (camera coords) to Z >= near."""
    inside = pc[:, 2] >= near
    if inside.all():
        return pc
    if not inside.any():
        return pc[:0]
    out = []
    n = len(pc)
    for i in range(n):
        a, b = pc[i], pc[(i + 1) % n]
        ia, ib = inside[i], inside[(i + 1) % n]
        if ia:
            out.append(a)
        if ia != ib:
            t = (near - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.array(out) if len(out) >= 3 else pc[:0]


def project_polygon(cam: Camera, pts_world: np.ndarray) -> np.ndarray:
    """Clip a world polygon to the near plane and project it; empty (0, 2) if nothing is left."""
    pc = clip_near(cam.to_camera(pts_world))
    if len(pc) == 0:
        return np.zeros((0, 2))
    return cam.project_camera(pc)


def project_polygons(cam: Camera, polys: list[np.ndarray]) -> list[np.ndarray]:
    """:func:`project_polygon` for many polygons with one matrix product (Python overhead is
    the main cost of drawing hundreds of small parts)."""
    if not polys:
        return []
    sizes = [len(p) for p in polys]
    pc = cam.to_camera(np.concatenate(polys))
    z = pc[:, 2]
    ok = z >= NEAR_PLANE_M
    with np.errstate(divide="ignore", invalid="ignore"):
        zz = np.where(ok, z, 1.0)
        uv = np.stack([cam.cx + cam.f * pc[:, 0] / zz, cam.cy + cam.f * pc[:, 1] / zz], 1)
    out = []
    i = 0
    for n in sizes:
        sl = slice(i, i + n)
        i += n
        if ok[sl].all():
            out.append(uv[sl])
        else:
            clipped = clip_near(pc[sl])
            out.append(cam.project_camera(clipped) if len(clipped) else np.zeros((0, 2)))
    return out


def curve_offset(z: np.ndarray | float, curvature: float) -> np.ndarray | float:
    """Lateral shift of the road centreline at distance ``z`` (parabolic arc, 1/m curvature)."""
    return 0.5 * curvature * np.asarray(z) ** 2


@lru_cache(maxsize=8)
def ground_maps(cam: Camera, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel of a grid (every ``step`` px) hits the road: lateral x and distance z.

    Pixels at or above the horizon get ``z = inf``. Used for the perspective-correct road
    texture, the tyre tracks and the fog, which are computed coarse and upsampled (cheap).
    """
    gw = max(2, math.ceil(cam.width / step))
    gh = max(2, math.ceil(cam.height / step))
    u = (np.arange(gw) + 0.5) * cam.width / gw
    v = (np.arange(gh) + 0.5) * cam.height / gh
    uu, vv = np.meshgrid(u, v)
    rays = np.stack([(uu - cam.cx) / cam.f, (vv - cam.cy) / cam.f, np.ones_like(uu)], -1)
    d = rays @ cam.rotation  # world directions (rows of R are camera axes)
    dy = d[..., 1]
    hit = dy < -1e-6
    t = np.where(hit, cam.height_m / np.where(hit, -dy, 1.0), np.inf)
    with np.errstate(invalid="ignore"):
        x = np.where(hit, t * d[..., 0], 0.0)
        z = np.where(hit, t * d[..., 2], np.inf)
    z = np.where(z > 0, z, np.inf)
    return x.astype(np.float32), z.astype(np.float32)


def to_fixed(uv: np.ndarray, shift: int = 4) -> np.ndarray:
    """Pixel coordinates -> int32 fixed point for OpenCV's sub-pixel anti-aliased drawing.

    Our coordinates put pixel ``j`` on ``[j, j + 1)``; OpenCV puts its centre at ``j``: shift by
    half a pixel so boxes and drawings agree.
    """
    lim = 2.0e7 / (1 << shift)
    uv = uv - 0.5
    if np.abs(uv).max() > lim:
        uv = np.clip(uv, -lim, lim)
    return np.round(uv * (1 << shift)).astype(np.int32).reshape(-1, 1, 2)
