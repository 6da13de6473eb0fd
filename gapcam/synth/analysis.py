"""Ground truth from a scene description, without drawing: boxes, lens coverage, the label.

The sampler uses this to check a candidate scene really has the requested label before spending
time on pixels, and the renderer uses the same function for the metadata, so the two can't drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from gapcam.synth.effects import ANALYSIS_WIDTH, lens_coverage
from gapcam.synth.geometry import Camera, curve_offset
from gapcam.synth.labels import LENS_BANDS_M, Judgement, SeenVehicle, ViewFacts, judge
from gapcam.synth.specs import RoadSpec, SceneSpec
from gapcam.synth.vehicles import PlacedVehicle, place_vehicle


@dataclass
class Assessment:
    camera: Camera
    placed: list[PlacedVehicle]
    boxes: list[tuple[int, int, int, int] | None]
    facts: ViewFacts
    judgement: Judgement


def int_box(
    box: tuple[float, float, float, float] | None, w: int, h: int
) -> tuple[int, ...] | None:
    """Continuous box -> ints that still contain it (floor/ceil), clipped to the image."""
    if box is None:
        return None
    x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
    x1, y1 = int(np.ceil(box[2])), int(np.ceil(box[3]))
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1, y1)


def analysis_size(size: tuple[int, int]) -> tuple[int, int]:
    return ANALYSIS_WIDTH, max(8, round(ANALYSIS_WIDTH * size[1] / size[0]))


def adjacent_regions(spec: SceneSpec, size: tuple[int, int]) -> list[np.ndarray]:
    """Masks (analysis grid) of where the adjacent lane and anything in it would appear, one per
    distance band of :data:`LENS_BANDS_M` (empty list if there is no adjacent lane)."""
    aw, ah = analysis_size(size)
    road = spec.road
    if not road.has_lane("adjacent"):
        return []
    cam = spec.camera.camera((aw, ah))
    x0, x1 = road.boundary(0), road.boundary(1)
    masks = []
    for z0, z1 in zip(LENS_BANDS_M[:-1], LENS_BANDS_M[1:], strict=True):
        pts = []
        for z in np.linspace(z0, z1, 4):
            off = float(curve_offset(z, road.curvature))
            for x in (x0, x1):
                for y in (0.0, 1.5):
                    pts.append((x + off, y, z))
        mask = np.zeros((ah, aw), np.float32)
        pc = cam.to_camera(np.array(pts))
        pc = pc[pc[:, 2] > 0.3]
        if len(pc) >= 3:
            uv = np.clip(cam.project_camera(pc), -1e4, 1e4).astype(np.float32)
            hull = cv2.convexHull(uv)
            cv2.fillPoly(mask, [np.round(hull * 16).astype(np.int32)], 1.0, cv2.LINE_8, 4)
        masks.append(mask)
    return masks


def adjacent_region(spec: SceneSpec, size: tuple[int, int]) -> np.ndarray:
    """Union of :func:`adjacent_regions` (for picking where lens dirt must go)."""
    masks = adjacent_regions(spec, size)
    aw, ah = analysis_size(size)
    return np.maximum.reduce(masks) if masks else np.zeros((ah, aw), np.float32)


def assess(spec: SceneSpec, size: tuple[int, int]) -> Assessment:
    """Place the vehicles, measure the lens coverage and apply the labelling rules."""
    w, h = size
    cam = spec.camera.camera(size)
    placed = [place_vehicle(cam, spec.road, v) for v in spec.vehicles]
    boxes = [int_box(p.box, w, h) for p in placed]
    cond = spec.conditions
    bands = lens_coverage(cond.lens, adjacent_regions(spec, size)) if cond.lens else []
    coverage = min(bands) if bands else 0.0
    facts = ViewFacts(
        image_width=w,
        adjacent_lane=spec.road.has_lane("adjacent"),
        lens_coverage=coverage,
        ambient=cond.ambient,
        glare=cond.glare if cond.sun is not None else 0.0,
        fog_visibility_m=cond.fog_visibility_m,
        sensor_fault=cond.sensor_fault,
    )
    seen = [SeenVehicle(v.lane, v.distance_m, b) for v, b in zip(spec.vehicles, boxes, strict=True)]
    return Assessment(cam, placed, boxes, facts, judge(seen, facts))


def road_summary(road: RoadSpec) -> dict:
    return {
        "lanes_left": road.lanes_left,
        "lanes_right": road.lanes_right,
        "lane_width_m": round(road.lane_width, 2),
        "curvature_per_m": round(road.curvature, 5),
        "barrier": road.barrier,
        "verge": road.verge,
        "divider": "solid" if road.solid_divider else "dashed",
    }
