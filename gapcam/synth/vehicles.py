"""Other road users as low-poly 3D models: cars, SUVs, vans, trucks and motorbikes.

A vehicle behind a rear-facing camera shows its front and the side facing the camera; each model
is a list of planar parts in vehicle coordinates (``lx`` lateral, ``ly`` up, ``lz`` from the front
bumper backwards) drawn far-to-near with the painter's algorithm. The ground-truth box is the
bounding box of exactly the parts that are drawn, so it is tight by construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from gapcam.synth.geometry import Camera, curve_offset, project_polygon, project_polygons
from gapcam.synth.lighting import Lighting
from gapcam.synth.raster import disc3d, fill_uv
from gapcam.synth.specs import BGR, RoadSpec, VehicleSpec

KINDS = ("car", "suv", "van", "truck", "motorbike")

#: Paint colours (BGR) with their rough share on European roads.
PAINTS: tuple[tuple[BGR, float], ...] = (
    ((232, 234, 236), 0.22),
    ((28, 28, 30), 0.19),
    ((112, 114, 116), 0.15),
    ((178, 180, 182), 0.14),
    ((120, 58, 22), 0.08),
    ((34, 34, 160), 0.07),
    ((56, 84, 44), 0.03),
    ((128, 168, 192), 0.03),
    ((32, 56, 98), 0.03),
    ((28, 176, 224), 0.02),
    ((176, 128, 70), 0.04),
)

#: Size ranges per kind: length, width, height, hood height, hood length, screen length, wheel r.
_DIMS: dict[str, tuple[tuple[float, float], ...]] = {
    "car": (
        (4.1, 4.9),
        (1.74, 1.86),
        (1.38, 1.5),
        (0.82, 0.92),
        (1.0, 1.3),
        (0.75, 0.95),
        (0.31, 0.33),
    ),
    "suv": (
        (4.4, 5.0),
        (1.84, 1.98),
        (1.64, 1.82),
        (0.98, 1.1),
        (1.05, 1.3),
        (0.65, 0.8),
        (0.36, 0.39),
    ),
    "van": (
        (4.9, 6.0),
        (1.94, 2.06),
        (1.95, 2.55),
        (0.98, 1.1),
        (0.6, 0.9),
        (0.7, 0.95),
        (0.34, 0.37),
    ),
    "truck": (
        (12.0, 16.5),
        (2.48, 2.52),
        (3.6, 4.0),
        (2.85, 3.2),
        (2.2, 2.4),
        (0.0, 0.0),
        (0.5, 0.52),
    ),
    "motorbike": (
        (2.0, 2.2),
        (0.75, 0.85),
        (1.55, 1.7),
        (0.9, 1.0),
        (0.3, 0.3),
        (0.2, 0.2),
        (0.31, 0.33),
    ),
}

Part = tuple[np.ndarray, str]


def sample_paint(rng: np.random.Generator) -> BGR:
    cols, w = zip(*PAINTS, strict=True)
    base = np.array(cols[rng.choice(len(cols), p=np.array(w) / sum(w))], float)
    return tuple(
        int(c) for c in np.clip(base * rng.uniform(0.9, 1.08) + rng.normal(0, 4, 3), 0, 255)
    )  # type: ignore[return-value]


def sample_vehicle(
    rng: np.random.Generator,
    kind: str,
    lane: str,
    distance_m: float,
    lights_on: bool,
    lateral_offset: float | None = None,
) -> VehicleSpec:
    """A vehicle of ``kind`` with random size and paint at ``distance_m`` in ``lane``."""
    d = [rng.uniform(lo, hi) for lo, hi in _DIMS[kind]]
    if kind == "truck":
        trim = tuple(
            int(c)
            for c in rng.choice(
                [
                    (235, 235, 235),
                    (200, 200, 196),
                    (150, 60, 20),
                    (40, 40, 150),
                    (60, 120, 60),
                    (90, 90, 92),
                ]
            )
        )
    elif kind == "motorbike":
        trim = tuple(int(c) for c in rng.choice([(30, 30, 32), (45, 40, 38), (60, 60, 70)]))
    else:
        trim = (40, 40, 42)
    if lateral_offset is None:
        lateral_offset = float(rng.normal(0.0, 0.18 if kind != "motorbike" else 0.35))
    return VehicleSpec(
        kind=kind,
        lane=lane,
        lateral_offset=float(np.clip(lateral_offset, -0.5, 0.5)),
        distance_m=float(distance_m),
        length=d[0],
        width=d[1],
        height=d[2],
        hood_height=d[3],
        hood_length=d[4],
        screen_length=d[5],
        wheel_radius=d[6],
        color=sample_paint(rng),
        trim=trim,  # type: ignore[arg-type]
        lights_on=lights_on,
    )


def lateral_center(road: RoadSpec, v: VehicleSpec) -> float:
    return road.lane_center(v.lane) + v.lateral_offset


def _q(pts: list[tuple[float, float, float]]) -> np.ndarray:
    return np.array(pts, dtype=np.float64)


def _car_parts(v: VehicleSpec, s: float, cam_h: float, front: bool, screen: bool) -> list[Part]:
    L, W, H = v.length, v.width, v.height  # noqa: N806
    hb, hl, sl, r = v.hood_height, v.hood_length, v.screen_length, v.wheel_radius
    hw = W / 2
    if v.kind == "car":
        trunk, rw, clear = 0.8 * L / 4.6, 0.55, 0.15
    elif v.kind == "suv":
        trunk, rw, clear = 0.1, 0.25, 0.24
    else:  # van
        trunk, rw, clear = 0.0, 0.0, 0.2
    xs = s * hw
    parts: list[Part] = []
    # -- the side facing the camera
    side = [
        (0.22, clear + 0.05),
        (0.03, 0.34),
        (0.03, hb - 0.1),
        (0.3, hb),
        (L - 0.2, hb + 0.02),
        (L - 0.03, hb - 0.14),
        (L - 0.03, clear + 0.14),
        (L - 0.25, clear),
    ]
    parts.append((_q([(xs, y, z) for z, y in side]), "side"))
    parts.append(
        (
            _q(
                [
                    (xs, hb - 0.11, 0.3),
                    (xs, hb - 0.05, 0.3),
                    (xs, hb - 0.04, L - 0.3),
                    (xs, hb - 0.1, L - 0.3),
                ]
            ),
            "highlight",
        )
    )
    # Lower flank in its own shade: panels curve under, away from the sky light.
    low = [
        (0.35, clear + 0.06),
        (0.35, clear + 0.3),
        (L - 0.3, clear + 0.3),
        (L - 0.3, clear + 0.1),
    ]
    parts.append((_q([(xs, y, z) for z, y in low]), "side_low"))
    parts.append(
        (
            _q(
                [
                    (xs, clear, 0.4),
                    (xs, clear + 0.08, 0.4),
                    (xs, clear + 0.08, L - 0.4),
                    (xs, clear, L - 0.4),
                ]
            ),
            "trim",
        )
    )
    for wz in (0.7 + 0.1 * (v.kind == "suv"), L - 0.9):
        parts.append((disc3d(xs + s * 0.005, r, wz, r * 1.13, 12), "arch"))
        parts.append((disc3d(xs + s * 0.01, r, wz, r, 14), "tyre"))
        parts.append((disc3d(xs + s * 0.015, r, wz, r * 0.58, 10), "rim"))
    top_back = L - trunk - rw if v.kind != "van" else L - 0.05
    if cam_h > hb:
        # Seen from above the belt line: hood, shoulder and boot lid tops (before the cabin,
        # which stands in front of the boot lid).
        tops = [
            [
                (-hw + 0.16, hb, 0.26),
                (hw - 0.16, hb, 0.26),
                (hw, hb + 0.03, hl),
                (-hw, hb + 0.03, hl),
            ],
            [
                (xs, hb, 0.3),
                (xs, hb + 0.02, L - 0.2),
                (xs * 0.8, hb + 0.03, L - 0.2),
                (xs * 0.8, hb + 0.03, 0.3),
            ],
        ]
        if trunk > 0.05:
            tops.append(
                [
                    (-hw, hb + 0.02, L - trunk),
                    (hw, hb + 0.02, L - trunk),
                    (hw - 0.1, hb, L - 0.05),
                    (-hw + 0.1, hb, L - 0.05),
                ]
            )
        parts += [(_q(t), "hood") for t in tops]
    cab = [(hl, hb, 0.02), (hl + sl, H, 0.2), (top_back, H, 0.2), (L - trunk - 0.02, hb, 0.02)]
    parts.append((_q([(s * (hw - i), y, z) for z, y, i in cab]), "side"))
    if v.kind == "van":
        win_back = hl + sl + 0.95
        glass = [
            (hl + 0.12, hb + 0.08),
            (hl + sl - 0.04, H - 0.14),
            (win_back, H - 0.14),
            (win_back, hb + 0.08),
        ]
    else:
        glass = [
            (hl + 0.14, hb + 0.06),
            (hl + sl - 0.04, H - 0.06),
            (top_back - 0.05, H - 0.06),
            (L - trunk - 0.2, hb + 0.06),
        ]
    parts.append(
        (_q([(s * (hw - 0.06 - 0.14 * (y - hb) / (H - hb)), y, z) for z, y in glass]), "glass_side")
    )
    bz = hl + sl + 0.4 * (top_back - hl - sl)
    parts.append(
        (
            _q(
                [
                    (s * (hw - 0.07), hb + 0.04, bz - 0.06),
                    (s * (hw - 0.2), H - 0.04, bz - 0.06),
                    (s * (hw - 0.2), H - 0.04, bz + 0.06),
                    (s * (hw - 0.07), hb + 0.04, bz + 0.06),
                ]
            ),
            "dark",
        )
    )
    # -- the front
    if front:
        parts.append(
            (
                _q(
                    [
                        (-hw + 0.1, 0.0, 0.3),
                        (hw - 0.1, 0.0, 0.3),
                        (hw - 0.1, clear + 0.05, 0.3),
                        (-hw + 0.1, clear + 0.05, 0.3),
                    ]
                ),
                "under",
            )
        )
        for sx in (-1, 1):
            x0 = sx * (hw - 0.42)
            x1 = sx * (hw - 0.18)
            parts.append(
                (
                    _q([(x0, 0.0, 0.6), (x1, 0.0, 0.6), (x1, r * 1.2, 0.6), (x0, r * 1.2, 0.6)]),
                    "tyre",
                )
            )
        face = [
            (-hw + 0.12, clear + 0.04, 0.06),
            (hw - 0.12, clear + 0.04, 0.06),
            (hw, clear + 0.2, 0.16),
            (hw, hb - 0.08, 0.2),
            (hw - 0.16, hb, 0.26),
            (-hw + 0.16, hb, 0.26),
            (-hw, hb - 0.08, 0.2),
            (-hw, clear + 0.2, 0.16),
        ]
        parts.append((_q(face), "front"))
        parts.append(
            (
                _q(
                    [
                        (-hw + 0.14, clear + 0.05, 0.05),
                        (hw - 0.14, clear + 0.05, 0.05),
                        (hw - 0.1, clear + 0.17, 0.08),
                        (-hw + 0.1, clear + 0.17, 0.08),
                    ]
                ),
                "trim",
            )
        )
        gw = 0.3 * W if v.kind == "car" else 0.36 * W
        gy0, gy1 = clear + 0.22, hb - 0.2
        parts.append(
            (
                _q(
                    [
                        (-gw, gy0, 0.03),
                        (gw, gy0, 0.03),
                        (gw * 1.05, gy1, 0.1),
                        (-gw * 1.05, gy1, 0.1),
                    ]
                ),
                "grille",
            )
        )
        parts.append(
            (
                _q(
                    [
                        (-0.26, clear + 0.2, 0.02),
                        (0.26, clear + 0.2, 0.02),
                        (0.26, clear + 0.31, 0.02),
                        (-0.26, clear + 0.31, 0.02),
                    ]
                ),
                "plate",
            )
        )
        for sx in (-1, 1):
            parts.append(
                (
                    _q(
                        [
                            (sx * (hw - 0.07), hb - 0.1, 0.2),
                            (sx * (hw - 0.44), hb - 0.12, 0.14),
                            (sx * (hw - 0.42), hb - 0.2, 0.13),
                            (sx * (hw - 0.1), hb - 0.19, 0.18),
                        ]
                    ),
                    "light",
                )
            )
    if screen:
        parts.append(
            (
                _q(
                    [
                        (-hw + 0.08, hb + 0.04, hl),
                        (hw - 0.08, hb + 0.04, hl),
                        (hw - 0.22, H, hl + sl),
                        (-hw + 0.22, H, hl + sl),
                    ]
                ),
                "front",
            )
        )
        parts.append(
            (
                _q(
                    [
                        (-hw + 0.15, hb + 0.08, hl + 0.04),
                        (hw - 0.15, hb + 0.08, hl + 0.04),
                        (hw - 0.28, H - 0.05, hl + sl - 0.04),
                        (-hw + 0.28, H - 0.05, hl + sl - 0.04),
                    ]
                ),
                "glass",
            )
        )
        # The sky reflected in the raked windscreen: one diagonal band.
        f0, f1 = 0.25, 0.5

        def _ws(u: float, t: float) -> tuple[float, float, float]:
            half = (hw - 0.15) * (1 - t) + (hw - 0.28) * t
            return (
                half * (2 * u - 1),
                hb + 0.08 + t * (H - hb - 0.13),
                hl + 0.04 + t * (sl - 0.08),
            )

        parts.append(
            (_q([_ws(f0, 0.0), _ws(f1, 0.0), _ws(f1 - 0.15, 1.0), _ws(f0 - 0.22, 1.0)]), "glass_hi")
        )
        for sx in (-1, 1):
            parts.append(
                (
                    _q(
                        [
                            (sx * hw, hb + 0.06, hl + 0.1),
                            (sx * (hw + 0.2), hb + 0.08, hl + 0.14),
                            (sx * (hw + 0.2), hb + 0.22, hl + 0.14),
                            (sx * hw, hb + 0.24, hl + 0.1),
                        ]
                    ),
                    "mirror",
                )
            )
    if cam_h > H:
        parts.append(
            (
                _q(
                    [
                        (-hw + 0.22, H, hl + sl),
                        (hw - 0.22, H, hl + sl),
                        (hw - 0.22, H, top_back),
                        (-hw + 0.22, H, top_back),
                    ]
                ),
                "hood",
            )
        )
    return parts


def _truck_parts(v: VehicleSpec, s: float, cam_h: float, front: bool) -> list[Part]:
    L, W, H = v.length, v.width, v.height  # noqa: N806
    hc, lc, r = v.hood_height, v.hood_length, v.wheel_radius
    hw = W / 2
    ht = hw + 0.02
    xs, xt = s * hw, s * ht
    tz = lc + 0.3
    parts: list[Part] = []
    parts.append((_q([(xt, 1.15, tz), (xt, H, tz), (xt, H, L), (xt, 1.15, L)]), "trailer"))
    parts.append(
        (_q([(xt, 1.15, tz + 0.02), (xt, 1.22, tz + 0.02), (xt, 1.22, L), (xt, 1.15, L)]), "dark")
    )
    parts.append(
        (
            _q(
                [
                    (xs * 0.9, 0.9, tz + 0.4),
                    (xs * 0.9, 1.15, tz + 0.4),
                    (xs * 0.9, 1.15, L - 0.2),
                    (xs * 0.9, 0.9, L - 0.2),
                ]
            ),
            "dark",
        )
    )
    for wz in (L - 1.2, L - 2.5, L - 3.8, lc + 1.1, lc + 2.4):
        parts.append((disc3d(xs + s * 0.01, r, wz, r, 14), "tyre"))
        parts.append((disc3d(xs + s * 0.02, r, wz, r * 0.55, 10), "rim"))
    parts.append(
        (_q([(-ht, 1.15, tz), (ht, 1.15, tz), (ht, H, tz), (-ht, H, tz)]), "trailer_front")
    )
    parts.append((_q([(xs, 0.45, 0.04), (xs, hc, 0.1), (xs, hc, lc), (xs, 0.45, lc)]), "side"))
    parts.append(
        (
            _q(
                [
                    (xs, hc * 0.6, 0.3),
                    (xs, hc * 0.88, 0.35),
                    (xs, hc * 0.88, 1.3),
                    (xs, hc * 0.6, 1.3),
                ]
            ),
            "glass_side",
        )
    )
    parts.append(
        (
            _q(
                [
                    (xs, 0.5, lc + 0.05),
                    (xs, 1.0, lc + 0.05),
                    (xs, 1.0, lc + 0.9),
                    (xs, 0.5, lc + 0.9),
                ]
            ),
            "rim",
        )
    )
    parts.append((disc3d(xs + s * 0.01, r, 1.2, r * 1.1, 12), "arch"))
    parts.append((disc3d(xs + s * 0.015, r, 1.2, r, 14), "tyre"))
    parts.append((disc3d(xs + s * 0.02, r, 1.2, r * 0.55, 10), "rim"))
    if front:
        parts.append(
            (
                _q(
                    [
                        (-hw + 0.1, 0.0, 0.5),
                        (hw - 0.1, 0.0, 0.5),
                        (hw - 0.1, 0.5, 0.5),
                        (-hw + 0.1, 0.5, 0.5),
                    ]
                ),
                "under",
            )
        )
        for sx in (-1, 1):
            parts.append(
                (
                    _q(
                        [
                            (sx * (hw - 0.55), 0.0, 1.2),
                            (sx * (hw - 0.15), 0.0, 1.2),
                            (sx * (hw - 0.15), 0.6, 1.2),
                            (sx * (hw - 0.55), 0.6, 1.2),
                        ]
                    ),
                    "tyre",
                )
            )
        parts.append(
            (_q([(-hw, 0.42, 0.02), (hw, 0.42, 0.02), (hw, hc, 0.1), (-hw, hc, 0.1)]), "front")
        )
        parts.append(
            (_q([(-hw, 0.38, 0.0), (hw, 0.38, 0.0), (hw, 0.74, 0.0), (-hw, 0.74, 0.0)]), "trim")
        )
        parts.append(
            (
                _q(
                    [
                        (-0.78, 0.82, 0.02),
                        (0.78, 0.82, 0.02),
                        (0.78, 1.62, 0.04),
                        (-0.78, 1.62, 0.04),
                    ]
                ),
                "grille",
            )
        )
        for y in (1.0, 1.2, 1.4):
            parts.append(
                (
                    _q(
                        [
                            (-0.76, y, 0.01),
                            (0.76, y, 0.01),
                            (0.76, y + 0.04, 0.01),
                            (-0.76, y + 0.04, 0.01),
                        ]
                    ),
                    "chrome",
                )
            )
        parts.append(
            (
                _q([(-0.26, 0.45, 0.0), (0.26, 0.45, 0.0), (0.26, 0.56, 0.0), (-0.26, 0.56, 0.0)]),
                "plate",
            )
        )
        for sx in (-1, 1):
            parts.append(
                (
                    _q(
                        [
                            (sx * (hw - 0.08), 0.52, 0.0),
                            (sx * (hw - 0.5), 0.52, 0.0),
                            (sx * (hw - 0.5), 0.68, 0.0),
                            (sx * (hw - 0.08), 0.68, 0.0),
                        ]
                    ),
                    "light",
                )
            )
        parts.append(
            (
                _q(
                    [
                        (-hw + 0.1, hc * 0.6, 0.08),
                        (hw - 0.1, hc * 0.6, 0.08),
                        (hw - 0.12, hc * 0.9, 0.12),
                        (-hw + 0.12, hc * 0.9, 0.12),
                    ]
                ),
                "glass",
            )
        )
        parts.append(
            (
                _q(
                    [
                        (-hw + 0.05, hc * 0.9, 0.1),
                        (hw - 0.05, hc * 0.9, 0.1),
                        (hw - 0.05, hc * 0.94, 0.02),
                        (-hw + 0.05, hc * 0.94, 0.02),
                    ]
                ),
                "dark",
            )
        )
        for sx in (-1, 1):
            parts.append(
                (
                    _q(
                        [
                            (sx * (hw + 0.08), hc * 0.5, 0.3),
                            (sx * (hw + 0.3), hc * 0.5, 0.3),
                            (sx * (hw + 0.3), hc * 0.78, 0.3),
                            (sx * (hw + 0.08), hc * 0.78, 0.3),
                        ]
                    ),
                    "dark",
                )
            )
    return parts


def _motorbike_parts(v: VehicleSpec, s: float, cam_h: float, front: bool) -> list[Part]:
    r = v.wheel_radius
    x = s * 0.02
    parts: list[Part] = [
        (disc3d(x, r, 1.75, r, 14), "tyre"),
        (disc3d(x, r, 0.35, r, 14), "tyre"),
        (_q([(x, 0.45, 0.45), (x, 0.95, 0.5), (x, 0.9, 1.8), (x, 0.55, 1.6)]), "side"),
        (_q([(x, 0.3, 0.75), (x, 0.6, 0.75), (x, 0.6, 1.3), (x, 0.3, 1.3)]), "dark"),
        (
            _q(
                [
                    (s * 0.15, 0.55, 0.75),
                    (s * 0.15, 1.05, 0.85),
                    (s * 0.15, 1.05, 1.25),
                    (s * 0.15, 0.6, 1.15),
                ]
            ),
            "rider",
        ),
        (
            _q(
                [
                    (s * 0.12, 1.0, 0.85),
                    (s * 0.12, 1.6, 0.9),
                    (s * 0.12, 1.55, 1.3),
                    (s * 0.12, 1.0, 1.3),
                ]
            ),
            "rider",
        ),
        (disc3d(s * 0.05, 1.7, 1.0, 0.15, 10), "helmet"),
    ]
    if front:
        parts += [
            (
                _q(
                    [(-0.06, 0.0, 0.35), (0.06, 0.0, 0.35), (0.06, 0.62, 0.35), (-0.06, 0.62, 0.35)]
                ),
                "tyre",
            ),
            (
                _q(
                    [(-0.22, 1.02, 0.8), (0.22, 1.02, 0.8), (0.24, 1.55, 0.85), (-0.24, 1.55, 0.85)]
                ),
                "rider",
            ),
            (
                _q([(-0.22, 1.5, 0.8), (-0.42, 1.12, 0.4), (-0.36, 1.08, 0.4), (-0.16, 1.42, 0.8)]),
                "rider",
            ),
            (
                _q([(0.22, 1.5, 0.8), (0.42, 1.12, 0.4), (0.36, 1.08, 0.4), (0.16, 1.42, 0.8)]),
                "rider",
            ),
            (disc3d(0.0, 1.7, 0.78, 0.15, 12, plane="z"), "helmet"),
            (
                _q([(-0.1, 1.64, 0.62), (0.1, 1.64, 0.62), (0.1, 1.72, 0.62), (-0.1, 1.72, 0.62)]),
                "glass",
            ),
            (
                _q(
                    [(-0.32, 0.75, 0.15), (0.32, 0.75, 0.15), (0.2, 1.18, 0.25), (-0.2, 1.18, 0.25)]
                ),
                "front",
            ),
            (
                _q(
                    [(-0.16, 1.15, 0.25), (0.16, 1.15, 0.25), (0.13, 1.36, 0.3), (-0.13, 1.36, 0.3)]
                ),
                "glass",
            ),
            (
                _q([(-0.44, 1.1, 0.4), (0.44, 1.1, 0.4), (0.44, 1.15, 0.4), (-0.44, 1.15, 0.4)]),
                "dark",
            ),
            (disc3d(0.0, 0.96, 0.12, 0.085, 10, plane="z"), "light"),
        ]
    return parts


@dataclass
class PlacedVehicle:
    """A vehicle's parts in world coordinates and their projections."""

    spec: VehicleSpec
    parts: list[tuple[np.ndarray, str, np.ndarray]]  # world pts, role, projected outline
    box: tuple[float, float, float, float] | None  # continuous pixel box clipped to the image
    distance: float  # straight-line distance, for fog and draw order
    x_center: float


def place_vehicle(cam: Camera, road: RoadSpec, v: VehicleSpec) -> PlacedVehicle:
    """Build, place and project a vehicle's visible parts; the box covers exactly those parts."""
    xc = lateral_center(road, v)
    zmid = v.distance_m + v.length / 2
    xmid = xc + float(curve_offset(zmid, road.curvature))
    s = 1.0 if xmid < 0 else -1.0
    front = v.distance_m > 0.05
    hl, sl, hb, H = v.hood_length, v.screen_length, v.hood_height, v.height  # noqa: N806
    screen = sl * (cam.height_m - hb) + (H - hb) * (v.distance_m + hl) > 0
    if v.kind == "truck":
        local = _truck_parts(v, s, cam.height_m, front)
    elif v.kind == "motorbike":
        local = _motorbike_parts(v, s, cam.height_m, front)
    else:
        local = _car_parts(v, s, cam.height_m, front, screen)
    worlds = []
    for pts, _role in local:
        z = v.distance_m + pts[:, 2]
        worlds.append(np.stack([xc + pts[:, 0] + curve_offset(z, road.curvature), pts[:, 1], z], 1))
    parts = []
    lo = np.array([np.inf, np.inf])
    hi = -lo
    for world, (_pts, role), uv in zip(worlds, local, project_polygons(cam, worlds), strict=True):
        if len(uv) >= 3:
            parts.append((world, role, uv))
            lo = np.minimum(lo, uv.min(0))
            hi = np.maximum(hi, uv.max(0))
    box = None
    if parts:
        x0, y0 = max(lo[0], 0.0), max(lo[1], 0.0)
        x1, y1 = min(hi[0], float(cam.width)), min(hi[1], float(cam.height))
        if x1 - x0 >= 1.0 and y1 - y0 >= 1.0:
            box = (x0, y0, x1, y1)
    dist = math.hypot(xmid, max(v.distance_m, 0.0) + 0.5)
    return PlacedVehicle(v, parts, box, dist, xmid)


def shadow_polygons(pv: PlacedVehicle, road: RoadSpec, strength: float, sun_dx: float) -> list:
    """Ground shadow footprints (world polygons, strength) under a vehicle."""
    v = pv.spec
    xc = lateral_center(road, v)
    hw = v.width / 2 + 0.1
    z0, z1 = v.distance_m - 0.1, v.rear_m + 0.05
    zs = np.array([z0, z1])
    off = curve_offset(zs, road.curvature)
    soft = np.array(
        [
            [xc - hw + sun_dx + off[0], 0, z0],
            [xc + hw + sun_dx + off[0], 0, z0],
            [xc + hw + sun_dx + off[1], 0, z1],
            [xc - hw + sun_dx + off[1], 0, z1],
        ]
    )
    k = 0.7 * v.width / 2
    core = np.array(
        [
            [xc - k + off[0], 0, z0 + 0.3],
            [xc + k + off[0], 0, z0 + 0.3],
            [xc + k + off[1], 0, z1 - 0.3],
            [xc - k + off[1], 0, z1 - 0.3],
        ]
    )
    return [(soft, strength), (core, min(0.9, strength * 1.5))]


def _mix(a: BGR | np.ndarray, b: BGR | np.ndarray, t: float) -> tuple[float, float, float]:
    return tuple(float(a[i]) * (1 - t) + float(b[i]) * t for i in range(3))  # type: ignore[return-value]


def draw_vehicle(
    img: np.ndarray,
    emissive: np.ndarray,
    soft: np.ndarray,
    cam: Camera,
    pv: PlacedVehicle,
    light: Lighting,
    wet: bool,
    side_shade: float,
) -> None:
    """Paint a placed vehicle; lights also go to the emissive layer when they are on."""
    v = pv.spec
    d = pv.distance
    col = v.color
    sky = light.sky_horizon
    lights = v.lights_on and (light.night or light.ambient < 0.6)
    fog_keep = 1.0 - light.fog(d)
    role_color = {
        "side": light.lit(col, d, side_shade),
        "front": light.lit(col, d, 0.92),
        "hood": light.lit(_mix(col, sky, 0.2), d, 1.05),
        "highlight": light.lit(_mix(col, (255, 255, 255), 0.35), d, side_shade),
        "trim": light.lit((42, 42, 44), d),
        "dark": light.lit((30, 30, 32), d),
        "under": light.lit((10, 10, 12), d),
        "grille": light.lit((32, 32, 34), d),
        "chrome": light.lit((150, 152, 155), d),
        "plate": light.lit((212, 218, 220), d),
        "tyre": light.lit((24, 24, 26), d),
        "arch": light.lit((16, 16, 18), d),
        "rim": light.lit((118, 120, 124), d),
        "glass": light.lit(_mix((40, 38, 36), sky, 0.32), d),
        "glass_side": light.lit(_mix((34, 32, 30), sky, 0.2), d),
        "glass_hi": light.lit(_mix((40, 38, 36), sky, 0.55), d),
        "side_low": light.lit(col, d, side_shade * 0.78),
        "mirror": light.lit(col, d, 0.78),
        "light": light.lit((206, 210, 212), d),
        "trailer": light.lit(v.trim, d, side_shade),
        "trailer_front": light.lit(v.trim, d, 0.9),
        "rider": light.lit(v.trim, d),
        "helmet": light.lit(_mix(col, (255, 255, 255), 0.1), d),
    }
    for _world, role, uv in pv.parts:
        if role == "light" and lights:
            fill_uv(img, uv, (250, 250, 250))
            glow = tuple(int(c * fog_keep + 40 * (1 - fog_keep)) for c in (255, 246, 232))
            fill_uv(emissive, uv, glow)
        else:
            fill_uv(img, uv, role_color[role])
    if lights and v.distance_m > 0:
        _light_pool(emissive, soft, cam, pv, light, wet)


def _light_pool(
    emissive: np.ndarray,
    soft: np.ndarray,
    cam: Camera,
    pv: PlacedVehicle,
    light: Lighting,
    wet: bool,
) -> None:
    """Headlight beams on the road towards the camera and wet-road glints (into the ``soft``
    layer, which is only ever seen blurred), and a truck's amber side markers."""
    v = pv.spec
    z0 = v.distance_m
    hw = v.width / 2
    xc = pv.x_center
    k = 0.55 if light.night else 0.25
    sx_, sy_ = soft.shape[1] / cam.width, soft.shape[0] / cam.height
    for reach, val in ((14.0, 22), (8.0, 26), (4.0, 30)):
        z1 = max(z0 - reach, 0.3)
        if z1 >= z0:
            continue
        pts = np.array(
            [[xc - hw, 0, z0], [xc + hw, 0, z0], [xc + hw + 1.6, 0, z1], [xc - hw - 1.6, 0, z1]]
        )
        uv = project_polygon(cam, pts) * (sx_, sy_)
        fill_uv(soft, uv, (int(val * k), int(val * k), int(val * k * 0.95)))
    if wet:
        for sx in (-1, 1):
            x = xc + sx * (hw - 0.25)
            z1 = max(z0 - 9.0, 0.3)
            if z1 < z0:
                pts = np.array(
                    [[x - 0.08, 0, z0], [x + 0.08, 0, z0], [x + 0.14, 0, z1], [x - 0.14, 0, z1]]
                )
                uv = project_polygon(cam, pts) * (sx_, sy_)
                fill_uv(soft, uv, (int(90 * k), int(88 * k), int(80 * k)))
    if v.kind == "truck":
        for j in range(6):
            z = z0 + 3.0 + j * (v.length - 4.0) / 5
            uv = project_polygon(cam, disc3d(xc - np.sign(xc) * (hw + 0.02), 1.1, z, 0.06, 6))
            fill_uv(emissive, uv, (0, int(140 * k + 40), int(255 * k + 60)))


def glow_blur(emissive: np.ndarray, cam: Camera, spread: float) -> np.ndarray:
    """A cheap bloom: blur the emissive layer at quarter resolution and upsample."""
    h, w = emissive.shape[:2]
    small = cv2.resize(emissive, (max(8, w // 4), max(8, h // 4)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), max(0.8, spread * cam.scale / 4))
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
