"""Random scene descriptions for a requested class, drawn from a seed.

The class is decided first and the scene is built to match it, then checked against the rules in
:mod:`gapcam.synth.labels` (via :func:`gapcam.synth.analysis.assess`); a candidate that does not
match is redrawn from a derived seed, so the result is still a pure function of the seed.
Independent RNG streams for side, class and scene mean ``side="left"`` and ``side="right"`` with the
same seed and class give mirror images of one scene.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from gapcam.labels import BLOCKED, LANE_CHANGE_CLASSES, UNDEFINED
from gapcam.synth import labels as rules
from gapcam.synth.analysis import adjacent_region, adjacent_regions, assess
from gapcam.synth.effects import lens_coverage
from gapcam.synth.specs import (
    CameraSpec,
    Conditions,
    Effects,
    EgoSpec,
    LensBlob,
    RoadSpec,
    SceneSpec,
    VehicleSpec,
)
from gapcam.synth.vehicles import KINDS, sample_paint, sample_vehicle

SIDES = ("left", "right")
_KIND_P = np.array([0.5, 0.22, 0.13, 0.1, 0.05])
_MAX_ATTEMPTS = 40


def _pick(rng: np.random.Generator, items: tuple | list, p: list[float] | np.ndarray) -> str:
    p = np.asarray(p, float)
    return items[int(rng.choice(len(items), p=p / p.sum()))]


def sample_camera(rng: np.random.Generator) -> CameraSpec:
    return CameraSpec(
        hfov_deg=float(rng.uniform(58, 72)),
        yaw_deg=float(rng.uniform(16, 26)),
        horizon_frac=float(rng.uniform(0.36, 0.46)),
        roll_deg=float(np.clip(rng.normal(0, 0.8), -2, 2)),
        height_m=float(rng.uniform(0.95, 1.15)),
    )


def sample_ego(rng: np.random.Generator) -> EgoSpec:
    return EgoSpec(
        color=sample_paint(rng),
        side_x=float(rng.uniform(-0.16, -0.08)),
        tail_m=float(rng.uniform(3.0, 4.0)),
        belt_height=float(rng.uniform(0.9, 1.0)),
        housing=_pick(rng, [None, "bottom", "top"], [0.55, 0.3, 0.15]),
        housing_size=float(rng.uniform(0.1, 0.2)),
    )


def sample_road(rng: np.random.Generator, ego: EgoSpec, lanes_left: int | None = None) -> RoadSpec:
    lane_w = float(rng.uniform(3.25, 3.75))
    center = ego.side_x - 0.92 + float(np.clip(rng.normal(0, 0.2), -0.45, 0.45))
    if lanes_left is None:
        lanes_left = 1 if rng.random() < 0.55 else 2
    curvature = 0.0 if rng.random() < 0.4 else float(rng.choice([-1, 1]) / rng.uniform(700, 3000))
    barrier = _pick(rng, ["guardrail", "concrete", "none"], [0.5, 0.25, 0.25])
    dash = [(3.0, 9.0), (6.0, 12.0), (4.5, 7.5)][int(rng.integers(3))]
    grey = rng.uniform(72, 122)
    asphalt = tuple(int(np.clip(grey + d, 0, 255)) for d in rng.normal(0, 3, 3) + (2, 0, -2))
    marking = tuple(int(c) for c in np.clip(rng.normal(222, 10, 3), 170, 245))
    edge = (40, 180, 225) if rng.random() < 0.12 else marking
    return RoadSpec(
        lane_width=lane_w,
        ego_lane_center=center,
        lanes_left=lanes_left,
        lanes_right=int(rng.random() < 0.6),
        curvature=curvature,
        shoulder_left=float(rng.uniform(0.3, 1.0) if lanes_left == 0 else rng.uniform(0.4, 3.0)),
        barrier=barrier,
        verge="grass" if rng.random() < 0.75 else "dry",
        marking_bgr=marking,  # type: ignore[arg-type]
        edge_bgr=edge,  # type: ignore[arg-type]
        dash_length=dash[0],
        dash_gap=dash[1],
        asphalt_bgr=asphalt,  # type: ignore[arg-type]
        trees=float(rng.uniform(0, 5)),
        lamps=bool(rng.random() < 0.3),
        texture_seed=int(rng.integers(2**31)),
        solid_divider=bool(rng.random() < 0.08),
        travelled_m=float(rng.uniform(0, 100)),
    )


def sample_conditions(rng: np.random.Generator, camera: CameraSpec) -> Conditions:
    """Benign conditions: the adjacent lane stays judgeable (kept clear of every threshold)."""
    tod = _pick(rng, ["day", "dusk", "night"], [0.6, 0.2, 0.2])
    weather = _pick(rng, ["clear", "overcast", "rain", "fog"], [0.45, 0.25, 0.2, 0.1])
    amb = {
        "day": {
            "clear": (0.95, 1.1),
            "overcast": (0.75, 0.9),
            "rain": (0.6, 0.8),
            "fog": (0.8, 0.95),
        },
        "dusk": {
            "clear": (0.4, 0.6),
            "overcast": (0.35, 0.5),
            "rain": (0.3, 0.45),
            "fog": (0.35, 0.5),
        },
        "night": {k: (0.15, 0.3) for k in ("clear", "overcast", "rain", "fog")},
    }[tod][weather]
    sun = None
    glare = 0.0
    if tod in ("day", "dusk") and weather == "clear" and rng.random() < 0.35:
        sun = (float(rng.uniform(0.3, 1.15)), float(rng.uniform(-0.15, camera.horizon_frac - 0.04)))
        glare = float(rng.uniform(0.05, rules.GLARE_OK_STRENGTH))
    clouds = rng.uniform(0.0, 0.7) if weather == "clear" else rng.uniform(0.6, 1.0)
    return Conditions(
        time_of_day=tod,
        ambient=float(rng.uniform(*amb)),
        street_lights=bool(tod == "night" and rng.random() < 0.6),
        weather=weather,
        fog_visibility_m=float(rng.uniform(rules.FOG_OK_VISIBILITY_M, 400))
        if weather == "fog"
        else None,
        rain=float(rng.uniform(0.3, 1.0)) if weather == "rain" else 0.0,
        sun=sun,
        glare=glare,
        lens_kind=None,
        clouds=float(clouds),
        scenery=_pick(rng, ["trees", "hills", "city"], [0.5, 0.3, 0.2]),
    )


def sample_effects(rng: np.random.Generator, night: bool) -> Effects:
    return Effects(
        exposure=float(rng.uniform(0.9, 1.3) if night else rng.uniform(0.8, 1.2)),
        white_balance=tuple(float(x) for x in np.clip(rng.normal(1.0, 0.04, 3), 0.88, 1.12)),  # type: ignore[arg-type]
        noise=float(rng.uniform(3.5, 8.0) if night else rng.uniform(1.0, 4.5)),
        blur=0.0 if rng.random() < 0.4 else float(rng.uniform(0.3, 1.1)),
        motion_blur=0.0 if rng.random() < 0.85 else float(rng.uniform(2.0, 5.0)),
        jpeg_quality=None if rng.random() < 0.5 else int(rng.integers(30, 86)),
        vignetting=float(rng.uniform(0.0, 0.45)),
    )


def _drops(rng: np.random.Generator, n: int, rmin: float, rmax: float) -> tuple[LensBlob, ...]:
    out = []
    for _ in range(n):
        r = float(rng.uniform(rmin, rmax))
        out.append(
            LensBlob(
                float(rng.random()),
                float(rng.random()),
                r,
                r * float(rng.uniform(0.8, 1.2)),
                float(rng.uniform(0, 180)),
                float(rng.uniform(0.55, 0.85)),
                (200, 200, 200),
                int(rng.integers(2**31)),
            )
        )
    return tuple(out)


_LENS_COLORS = {
    "mud": [(38, 62, 84), (30, 48, 66), (52, 70, 80)],
    "object": [(22, 30, 26), (18, 20, 22)],
    "smear": [(200, 200, 200)],
    "drops": [(200, 200, 200)],
}


def occluders(
    rng: np.random.Generator, spec: SceneSpec, size: tuple[int, int], kind: str
) -> tuple[LensBlob, ...]:
    """Big blobs over the adjacent lane until every distance band is covered enough to be
    undefined (one blob per band to start, then more where coverage is still lowest)."""
    regions = [r for r in adjacent_regions(spec, size) if r.sum() > 0]
    color = _LENS_COLORS[kind][int(rng.integers(len(_LENS_COLORS[kind])))]
    blobs: list[LensBlob] = []
    if kind == "drops":
        blobs += list(_drops(rng, int(rng.integers(25, 50)), 0.03, 0.08))
    if not regions:
        regions = [adjacent_region(spec, size)]
    ah, aw = regions[0].shape

    def blob_at(region: np.ndarray, r: float) -> LensBlob:
        ys, xs = np.nonzero(region)
        cx, cy = (xs.mean() / aw, ys.mean() / ah) if len(xs) else (0.6, 0.6)
        op = float(rng.uniform(0.85, 0.97))
        return LensBlob(
            float(np.clip(cx + rng.normal(0, 0.04), 0.05, 0.95)),
            float(np.clip(cy + rng.normal(0, 0.04), 0.05, 0.95)),
            r,
            r * float(rng.uniform(0.6, 1.0)),
            float(rng.uniform(0, 180)),
            op,
            color,
            int(rng.integers(2**31)),
        )

    blobs += [blob_at(r, float(rng.uniform(0.14, 0.3))) for r in regions]
    for _ in range(12):
        cov = lens_coverage(tuple(blobs), regions)
        if min(cov) >= rules.LENS_SAMPLED_COVERAGE:
            break
        blobs.append(blob_at(regions[int(np.argmin(cov))], float(rng.uniform(0.12, 0.25))))
    return tuple(blobs)


def _spaced(existing: list[VehicleSpec], lane: str, d: float, length: float) -> bool:
    """No two vehicles in one lane closer than 3 m bumper to bumper."""
    for v in existing:
        if v.lane == lane and not (d + length < v.distance_m - 3.0 or d > v.rear_m + 3.0):
            return False
    return True


def sample_kind(rng: np.random.Generator) -> str:
    return _pick(rng, KINDS, _KIND_P)


def sample_vehicles(
    rng: np.random.Generator, road: RoadSpec, want_blocked: bool, lights: bool
) -> list[VehicleSpec]:
    """Vehicles for a blocked or free scene: adjacent-lane traffic plus distractors."""
    out: list[VehicleSpec] = []
    if road.has_lane("adjacent"):
        if want_blocked:
            mode = _pick(rng, ["alongside", "near", "mid"], [0.3, 0.4, 0.3])
            kind = sample_kind(rng)
            v = sample_vehicle(rng, kind, "adjacent", 0.0, lights)
            lo, hi = {
                "alongside": (-0.55 * v.length, 2.0),
                "near": (2.0, 10.0),
                "mid": (10.0, 19.5),
            }[mode]
            out.append(replace(v, distance_m=float(rng.uniform(lo, hi))))
        n_far = int(
            _pick(rng, [0, 1, 2], [0.45, 0.38, 0.17] if not want_blocked else [0.7, 0.25, 0.05])
        )
        for _ in range(n_far):
            d = float(rng.uniform(rules.FREE_BEYOND_M, 150.0))
            v = sample_vehicle(rng, sample_kind(rng), "adjacent", d, lights)
            if _spaced(out, "adjacent", d, v.length):
                out.append(v)
    if rng.random() < 0.45:
        d = float(rng.uniform(5.0, 90.0))
        v = sample_vehicle(rng, sample_kind(rng), "ego", d, lights)
        out.append(v)
    if road.has_lane("beyond"):
        for _ in range(int(rng.integers(0, 3))):
            d = float(rng.uniform(-3.0, 150.0))
            v = sample_vehicle(rng, sample_kind(rng), "beyond", d, lights)
            if _spaced(out, "beyond", d, v.length):
                out.append(v)
    if road.has_lane("right") and rng.random() < 0.3:
        out.append(
            sample_vehicle(rng, sample_kind(rng), "right", float(rng.uniform(8.0, 120.0)), lights)
        )
    return out


def _benign_ok(spec: SceneSpec, size: tuple[int, int]) -> bool:
    c = spec.conditions
    if c.lens:
        cov = lens_coverage(c.lens, adjacent_regions(spec, size))
        if cov and max(cov) >= rules.LENS_OK_COVERAGE:
            return False
    return True


def _blocker_ok(spec: SceneSpec, size: tuple[int, int]) -> bool:
    """The sampled blocker must be clearly visible (a clean training label)."""
    a = assess(spec, size)
    idx = a.judgement.blocking_index
    if idx is None:
        return False
    b = a.boxes[idx]
    return b is not None and (b[2] - b[0]) >= rules.SAMPLED_BLOCKER_MIN_WIDTH_FRAC * size[0]


def _candidate(
    rng: np.random.Generator, seed: int, side: str, label: str, size: tuple[int, int]
) -> SceneSpec:
    camera = sample_camera(rng)
    ego = sample_ego(rng)
    cause = None
    if label == UNDEFINED:
        cause = _pick(
            rng,
            [
                "lens_occluded",
                "too_dark",
                "sun_glare",
                "dense_fog",
                "sensor_fault",
                "no_adjacent_lane",
            ],
            [0.22, 0.15, 0.15, 0.17, 0.17, 0.14],
        )
    road = sample_road(rng, ego, 0 if cause == "no_adjacent_lane" else None)
    cond = sample_conditions(rng, camera)
    if cause == "too_dark":
        cond = replace(
            cond,
            time_of_day="night",
            ambient=float(rng.uniform(0.01, 0.035)),
            street_lights=False,
            sun=None,
            glare=0.0,
        )
        road = replace(road, lamps=False)
    elif cause == "sun_glare":
        cond = replace(
            cond,
            time_of_day=_pick(rng, ["day", "dusk"], [0.6, 0.4]),
            weather="clear",
            fog_visibility_m=None,
            rain=0.0,
            sun=(float(rng.uniform(0.35, 0.95)), float(rng.uniform(0.02, camera.horizon_frac))),
            glare=float(rng.uniform(0.68, 1.0)),
        )
        cond = replace(
            cond,
            ambient=float(
                rng.uniform(0.8, 1.05) if cond.time_of_day == "day" else rng.uniform(0.4, 0.6)
            ),
        )
    elif cause == "dense_fog":
        cond = replace(
            cond,
            weather="fog",
            fog_visibility_m=float(rng.uniform(6.0, 22.0)),
            sun=None,
            glare=0.0,
            rain=0.0,
            ambient=max(cond.ambient, 0.15),
        )
    elif cause == "sensor_fault":
        cond = replace(
            cond, sensor_fault=_pick(rng, list(rules.SENSOR_FAULTS), [0.3, 0.25, 0.2, 0.25])
        )
    night = cond.time_of_day == "night"
    lights = night or cond.time_of_day == "dusk" or rng.random() < 0.3
    if cause == "too_dark":
        lights = False
    want_blocked = label == BLOCKED or (label == UNDEFINED and rng.random() < 0.5)
    vehicles = sample_vehicles(rng, road, want_blocked, lights)
    fx = sample_effects(rng, night)
    if cause == "too_dark":
        fx = replace(fx, exposure=float(rng.uniform(0.8, 1.1)))
    if cause is None and cond.weather == "rain" and rng.random() < 0.5:
        cond = replace(
            cond, lens_kind="drops", lens=_drops(rng, int(rng.integers(3, 10)), 0.01, 0.03)
        )
    spec = SceneSpec(
        seed=seed,
        side=side,
        camera=camera,
        road=road,
        ego=ego,
        vehicles=tuple(vehicles),
        conditions=cond,
        effects=fx,
        noise_seed=int(rng.integers(2**31)),
    )
    if cause == "lens_occluded":
        kind = _pick(rng, ["mud", "smear", "object", "drops"], [0.4, 0.25, 0.2, 0.15])
        spec = replace(
            spec, conditions=replace(cond, lens_kind=kind, lens=occluders(rng, spec, size, kind))
        )
    return spec


def choose_side(seed: int) -> str:
    return SIDES[int(np.random.default_rng([seed, 1]).integers(2))]


def choose_label(seed: int) -> str:
    return LANE_CHANGE_CLASSES[
        int(np.random.default_rng([seed, 2]).integers(len(LANE_CHANGE_CLASSES)))
    ]


def side_and_label(seed: int, side: str | None, label: str | None) -> tuple[str, str]:
    """The requested side and label, or the seed's; ``ValueError`` for a bad seed, side or label."""
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    side = side or choose_side(seed)
    label = label or choose_label(seed)
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    if label not in LANE_CHANGE_CLASSES:
        raise ValueError(f"label must be one of {LANE_CHANGE_CLASSES}, got {label!r}")
    return side, label


def sample_scene(
    seed: int, size: tuple[int, int], side: str | None = None, label: str | None = None
) -> SceneSpec:
    """A scene with the requested (or seed-chosen) side and label; deterministic in its inputs."""
    side, label = side_and_label(seed, side, label)
    for attempt in range(_MAX_ATTEMPTS):
        rng = np.random.default_rng([seed, 3, attempt])
        spec = _candidate(rng, seed, side, label, size)
        if assess(spec, size).judgement.label != label:
            continue
        if label != UNDEFINED and not _benign_ok(spec, size):
            continue
        if label == BLOCKED and not _blocker_ok(spec, size):
            continue
        return spec
    raise RuntimeError(f"could not sample a {label!r} scene for seed {seed}")  # pragma: no cover
