"""Roadside views: the camera looks at a kerb, a wall, a fence, a shop front or greenery.

Why this exists: a side or rear-side camera on a real road spends much of its time with no
adjacent lane in view at all: parked at a kerb, turning at a junction, beside a wall or a
construction hoarding. A person calls those frames ``undefined`` (there is no lane to judge). The
rest of the generator renders a road seen along its lanes, so its ``undefined`` scenes are
visibility failures only (dirt, darkness, glare, fog, sensor faults); a model trained on it learned
"textured and not a clean road" as ``blocked`` and called real walls and shop fronts blocked. These
scenes teach it otherwise (``undefined`` cause ``roadside_view``).

How: a 2.5-D composition, not the road renderer: sky, a far skyline or tree line, ground strips
running to a vanishing point (a sliver of road, kerb, pavement, verge), one near structure
(facade with windows or a shop front, a wall, a hoarding, a fence or railing in front of what is
behind it, a hedge, trees or a grass slope) warped into perspective from a flat texture, street
furniture and pedestrians, sometimes the own car's flank at the edge, then the generator's own
lighting and camera effects (:func:`gapcam.synth.effects.apply_camera`). No vehicle is drawn, so
the label is ``undefined`` by construction. Deterministic in ``(seed, size, side)``; the right
camera is the left one mirrored, as in :func:`gapcam.synth.scene.render`.
"""

from __future__ import annotations

import cv2
import numpy as np

from gapcam.labels import UNDEFINED
from gapcam.synth.effects import apply_camera
from gapcam.synth.sampling import sample_effects
from gapcam.synth.vehicles import sample_paint

#: Share of ``undefined`` scenes that are roadside views (the rest: the visibility failures).
ROADSIDE_SHARE = 0.4
CAUSE = "roadside_view"
STRUCTURES = (
    "facade",
    "shopfront",
    "wall",
    "hoarding",
    "fence",
    "railing",
    "hedge",
    "trees",
    "slope",
)
_STRUCTURE_P = (0.16, 0.14, 0.14, 0.1, 0.1, 0.1, 0.1, 0.09, 0.07)


def is_roadside(seed: int) -> bool:
    """Whether an ``undefined`` scene of this seed is a roadside view (an independent stream)."""
    return bool(np.random.default_rng([int(seed), 7]).random() < ROADSIDE_SHARE)


def _bgr(rng: np.random.Generator, base: tuple[int, int, int], spread: float = 12.0) -> tuple:
    """``base`` varied mostly in brightness, a little in hue (grey stays grey)."""
    jitter = rng.normal(0, spread) + rng.normal(0, spread / 4, 3)
    return tuple(int(c) for c in np.clip(np.asarray(base) + jitter, 0, 255))


def _noise(rng: np.random.Generator, shape: tuple[int, int], scale: int, amp: float) -> np.ndarray:
    """Smooth value noise (float32, zero mean) of roughly ``scale`` px features."""
    h, w = shape
    small = rng.normal(0, 1, (max(2, h // scale + 2), max(2, w // scale + 2))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)[:h, :w] * amp


def _texture(
    rng: np.random.Generator, kind: str, tw: int, th: int
) -> tuple[np.ndarray, np.ndarray]:
    """A flat texture of the near structure and its opacity (1 = solid, 0 = see-through)."""
    tex = np.zeros((th, tw, 3), np.float32)
    alpha = np.ones((th, tw), np.float32)
    if kind in ("facade", "shopfront"):
        wall = _bgr(
            rng,
            [
                (170, 190, 205),
                (150, 150, 150),
                (60, 80, 150),
                (225, 225, 225),
                (90, 80, 70),
                (120, 135, 150),
            ][int(rng.integers(6))],
            15,
        )
        tex[:] = wall
        glass = _bgr(rng, [(60, 55, 50), (110, 90, 70), (40, 40, 40)][int(rng.integers(3))], 10)
        rows, cols = int(rng.integers(2, 7)), int(rng.integers(3, 12))
        ww, wh = rng.uniform(0.35, 0.8), rng.uniform(0.3, 0.7)
        ground = 0.35 if kind == "shopfront" else 0.0
        for r in range(rows):
            y0 = ground * th + (1 - ground) * th * (r + (1 - wh) / 2) / rows
            for c in range(cols):
                x0 = tw * (c + (1 - ww) / 2) / cols
                p0 = (int(x0), int(th - y0 - (1 - ground) * th * wh / rows))
                p1 = (int(x0 + tw * ww / cols), int(th - y0))
                shade = rng.uniform(0.7, 1.3)
                cv2.rectangle(tex, p0, p1, tuple(min(255.0, g * shade) for g in glass), -1)
        if kind == "shopfront":  # big panes, an awning band and a sign
            y_aw = int(th * (1 - ground))
            cv2.rectangle(tex, (0, y_aw), (tw, th), _bgr(rng, glass, 20), -1)
            for x in np.linspace(0, tw, int(rng.integers(3, 8))):
                cv2.line(tex, (int(x), y_aw), (int(x), th), wall, max(2, tw // 120))
            band = _bgr(
                rng,
                [(40, 40, 160), (60, 120, 40), (30, 30, 30), (160, 110, 40)][int(rng.integers(4))],
                20,
            )
            cv2.rectangle(tex, (0, y_aw - th // 14), (tw, y_aw), band, -1)
            sx = int(rng.uniform(0.05, 0.6) * tw)
            cv2.rectangle(
                tex,
                (sx, y_aw - th // 16),
                (sx + tw // 4, y_aw - th // 40),
                _bgr(rng, (235, 235, 235), 10),
                -1,
            )
            for i in range(int(rng.integers(4, 12))):  # lettering
                lx = sx + 6 + i * tw // 52
                cv2.rectangle(
                    tex, (lx, y_aw - th // 20), (lx + tw // 80, y_aw - th // 30), band, -1
                )
    elif kind == "wall":
        style = int(rng.integers(3))
        base = _bgr(rng, [(150, 150, 150), (60, 80, 140), (120, 130, 120)][style], 18)
        tex[:] = base
        if style == 1:  # brick
            for y in range(0, th, max(3, th // 40)):
                cv2.line(tex, (0, y), (tw, y), (170, 170, 170), 1)
        else:  # panels / blocks
            nx, ny = int(rng.integers(2, 9)), int(rng.integers(1, 5))
            for x in np.linspace(0, tw, nx + 1):
                cv2.line(tex, (int(x), 0), (int(x), th), tuple(0.8 * c for c in base), 2)
            for y in np.linspace(0, th, ny + 1):
                cv2.line(tex, (0, int(y)), (tw, int(y)), tuple(0.8 * c for c in base), 2)
        tex += _noise(rng, (th, tw), 8, 8)[..., None]
    elif kind == "hoarding":
        tex[:] = _bgr(
            rng, [(40, 45, 35), (30, 30, 30), (40, 60, 150), (60, 90, 40)][int(rng.integers(4))], 8
        )
        for x in np.linspace(0, tw, int(rng.integers(3, 8))):
            cv2.line(tex, (int(x), 0), (int(x), th), (20, 20, 20), max(2, tw // 200))
        tex += _noise(rng, (th, tw), 30, 10)[..., None]
        if rng.random() < 0.6:
            sx, sy = int(rng.uniform(0.1, 0.8) * tw), int(rng.uniform(0.2, 0.6) * th)
            cv2.rectangle(tex, (sx, sy), (sx + tw // 12, sy + th // 8), (235, 235, 235), -1)
    elif kind in ("fence", "railing"):
        alpha[:] = 0.0
        color = _bgr(
            rng,
            [(130, 130, 130), (40, 120, 220), (235, 235, 235), (60, 60, 60)][int(rng.integers(4))],
            10,
        )
        tex[:] = color
        if kind == "fence":  # chain-link mesh and posts
            step = max(4, tw // int(rng.integers(40, 90)))
            for o in range(-th, tw, step):
                cv2.line(alpha, (o, 0), (o + th, th), 0.8, 1)
                cv2.line(alpha, (o + th, 0), (o, th), 0.8, 1)
            posts = np.linspace(0, tw, int(rng.integers(3, 7)))
        else:  # vertical bars under a top rail
            posts = np.linspace(0, tw, int(rng.integers(20, 60)))
            cv2.rectangle(alpha, (0, 0), (tw, max(3, th // 20)), 1.0, -1)
            cv2.rectangle(
                alpha, (0, th - th // 10), (tw, th - th // 10 + max(3, th // 30)), 1.0, -1
            )
        for x in posts:
            cv2.line(alpha, (int(x), 0), (int(x), th), 1.0, max(2, tw // 150))
        if rng.random() < 0.4:  # a concrete plinth under it
            cv2.rectangle(alpha, (0, int(th * 0.8)), (tw, th), 1.0, -1)
            cv2.rectangle(tex, (0, int(th * 0.8)), (tw, th), _bgr(rng, (170, 170, 165)), -1)
    else:  # hedge, trees, slope: greenery
        green = _bgr(
            rng,
            [(40, 90, 50), (50, 110, 70), (30, 70, 40), (60, 120, 110)][int(rng.integers(4))],
            10,
        )
        tex[:] = green
        tex += _noise(rng, (th, tw), 6, 22)[..., None] + _noise(rng, (th, tw), 2, 10)[..., None]
        if kind == "trees":
            alpha[:] = 0.0
            for _ in range(int(rng.integers(3, 8))):
                cx, r = rng.uniform(0, tw), rng.uniform(0.12, 0.3) * th
                cy = rng.uniform(0.15, 0.5) * th
                cv2.circle(alpha, (int(cx), int(cy)), int(r), 1.0, -1)
                cv2.rectangle(
                    tex, (int(cx - r / 10), int(cy)), (int(cx + r / 10), th), (40, 55, 70), -1
                )
                cv2.rectangle(alpha, (int(cx - r / 10), int(cy)), (int(cx + r / 10), th), 1.0, -1)
            alpha[int(0.85 * th) :] = 1.0  # undergrowth
        elif kind == "hedge":
            alpha[: int(rng.uniform(0.2, 0.6) * th)] = 0.0
    return np.clip(tex, 0, 255), alpha


def _quad_warp(img: np.ndarray, tex: np.ndarray, alpha: np.ndarray, quad: np.ndarray) -> None:
    """Paint ``tex`` (with opacity ``alpha``) into the image quad TL, TR, BR, BL, in place."""
    h, w = img.shape[:2]
    th, tw = tex.shape[:2]
    src = np.float32([[0, 0], [tw, 0], [tw, th], [0, th]])
    m = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    warped = cv2.warpPerspective(tex, m, (w, h), flags=cv2.INTER_AREA)
    a = cv2.warpPerspective(alpha, m, (w, h), flags=cv2.INTER_LINEAR)[..., None]
    img[:] = img * (1 - a) + warped * a


def _line_y(vp: tuple[float, float], through: tuple[float, float], x: float) -> float:
    """y at ``x`` of the image line through the vanishing point and ``through``."""
    (vx, vy), (px, py) = vp, through
    return vy + (py - vy) * (x - vx) / (px - vx)


def _draw_far(img: np.ndarray, rng: np.random.Generator, horizon: float) -> None:
    """Skyline or tree line just above the horizon (what shows behind a fence or a low wall)."""
    h, w = img.shape[:2]
    x = -5.0
    trees = rng.random() < 0.5
    while x < w:
        bw = rng.uniform(0.05, 0.25) * w
        top = horizon - rng.uniform(0.05, 0.5 if not trees else 0.2) * h
        col = _bgr(rng, (60, 110, 60) if trees else (150, 150, 155), 25)
        if trees:
            cv2.circle(img, (int(x + bw / 2), int(top + bw / 3)), int(bw / 2), col, -1)
            cv2.rectangle(
                img, (int(x), int(top + bw / 3)), (int(x + bw), int(horizon + 2)), col, -1
            )
        else:
            cv2.rectangle(img, (int(x), int(top)), (int(x + bw), int(horizon + 2)), col, -1)
            for wy in np.arange(top + 4, horizon - 3, max(3, h // 40)):
                cv2.line(
                    img,
                    (int(x + 2), int(wy)),
                    (int(x + bw - 2), int(wy)),
                    tuple(0.7 * c for c in col),
                    1,
                )
        x += bw * rng.uniform(0.7, 1.2)


def _draw_person(
    img: np.ndarray, rng: np.random.Generator, x: float, foot: float, tall: float
) -> None:
    shirt, trousers = _bgr(rng, (110, 110, 110), 70), _bgr(rng, (60, 55, 50), 25)
    head = max(2, int(tall * 0.07))
    cv2.rectangle(
        img,
        (int(x - tall * 0.06), int(foot - tall * 0.48)),
        (int(x + tall * 0.06), int(foot)),
        trousers,
        -1,
    )
    cv2.rectangle(
        img,
        (int(x - tall * 0.1), int(foot - tall * 0.82)),
        (int(x + tall * 0.1), int(foot - tall * 0.45)),
        shirt,
        -1,
    )
    cv2.circle(img, (int(x), int(foot - tall * 0.9)), head, _bgr(rng, (120, 150, 190), 40), -1)


def render_roadside(seed: int, size: tuple[int, int], side: str) -> tuple[np.ndarray, dict]:
    """One roadside view (BGR uint8) and its ground truth, in :func:`render`'s metadata schema."""
    w, h = size
    rng = np.random.default_rng([int(seed), 8])
    tod = ("day", "dusk", "night")[int(rng.choice(3, p=[0.68, 0.18, 0.14]))]
    overcast = rng.random() < 0.45
    img = np.zeros((h, w, 3), np.float32)
    horizon = rng.uniform(0.25, 0.62) * h
    zenith = (200, 150, 90) if not overcast else (200, 200, 195)
    low = (235, 215, 190) if not overcast else (225, 225, 220)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img[:] = np.asarray(zenith, np.float32) * (1 - t) + np.asarray(low, np.float32) * t
    img += _noise(rng, (h, w), max(4, w // 8), 10)[..., None]
    _draw_far(img, rng, horizon)

    # Ground strips running to a vanishing point far to one side (the camera faces the roadside,
    # so lines converge gently): road sliver, kerb, pavement or verge, the structure's base line.
    # Each line is given by its height where it meets the left edge.
    vp = (rng.uniform(1.1, 4.0) * w, horizon)
    kerb0 = rng.uniform(0.72, 1.15) * h
    base0 = rng.uniform(horizon + 0.04 * h, max(horizon + 0.05 * h, kerb0 - 0.06 * h))
    cuts = sorted([kerb0, *rng.uniform(base0, kerb0, int(rng.integers(0, 3))), base0], reverse=True)
    img[int(horizon) :] = _bgr(rng, (95, 95, 98), 12)  # the road sliver nearest the car
    ground = [(175, 175, 172), (150, 160, 165), (60, 120, 80), (90, 110, 130), (120, 120, 118)]
    for y0 in cuts:  # each strip: from the horizon down to its line
        far = _line_y(vp, (0.0, y0), -w)
        poly = np.array([vp, (-w, vp[1]), (-w, far)])
        col = _bgr(rng, ground[int(rng.integers(len(ground)))], 12)
        cv2.fillPoly(img, [np.round(poly).astype(np.int32)], col)
    if rng.random() < 0.8:  # the kerb edge
        cv2.line(
            img,
            (-w, int(_line_y(vp, (0.0, kerb0), -w))),
            (int(vp[0]), int(vp[1])),
            _bgr(rng, (200, 200, 200), 10),
            max(1, w // 150),
        )
    img[int(horizon) - 1 :] += _noise(rng, (h - int(horizon) + 1, w), 3, 6)[..., None]

    def base(x: float) -> float:
        return _line_y(vp, (0.0, base0), x)

    # The near structure standing on the base line: a vertical plane from x=0 to where it ends.
    kind = STRUCTURES[int(rng.choice(len(STRUCTURES), p=np.asarray(_STRUCTURE_P)))]
    x_end = w * (1.0 if rng.random() < 0.6 else rng.uniform(0.5, 1.0))
    low = kind in ("fence", "railing", "hedge", "slope")
    top0 = base0 - rng.uniform(0.2, 0.5 if low else 1.6) * h
    if kind == "slope":  # a grass bank: its top edge follows the hillside, not the vanishing point
        quad = np.array(
            [[0, top0], [w, top0 + rng.uniform(-0.15, 0.25) * h], [w, base(w)], [0, base0]]
        )
        tex, alpha = _texture(rng, kind, 512, 256)
    else:
        quad = np.array(
            [[0, top0], [x_end, _line_y(vp, (0.0, top0), x_end)], [x_end, base(x_end)], [0, base0]]
        )
        tw = int(rng.integers(600, 1400))
        tex, alpha = _texture(rng, kind, tw, int(tw * rng.uniform(0.25, 0.6)))
    _quad_warp(img, tex, alpha, quad)

    for _ in range(int(rng.integers(0, 4))):  # poles, sign posts, bollards
        x = rng.uniform(0, w)
        foot = min(h - 1.0, _line_y(vp, (0.0, rng.uniform(base0, kerb0)), x))
        if foot <= horizon:
            continue
        tall = rng.uniform(0.5, 1.6) * (foot - horizon + 0.05 * h)
        col = _bgr(rng, (80, 80, 80), 25)
        width = max(2, int(tall * rng.uniform(0.01, 0.04)))
        cv2.rectangle(img, (int(x - width), int(foot - tall)), (int(x + width), int(foot)), col, -1)
        if rng.random() < 0.5:
            sign = _bgr(
                rng, [(200, 200, 200), (40, 40, 180), (160, 90, 20)][int(rng.integers(3))], 10
            )
            cv2.rectangle(
                img,
                (int(x - 4 * width), int(foot - tall)),
                (int(x + 4 * width), int(foot - tall + 6 * width)),
                sign,
                -1,
            )
    for _ in range(int(rng.choice(4, p=[0.6, 0.2, 0.12, 0.08]))):  # pedestrians on the pavement
        x = rng.uniform(0.05, 0.95) * w
        foot = min(h - 1.0, _line_y(vp, (0.0, rng.uniform(base0, kerb0)), x))
        if foot > horizon:
            _draw_person(img, rng, x, foot, (foot - horizon) * rng.uniform(0.6, 1.0) + 0.05 * h)
    if rng.random() < 0.45:  # the own car's flank in a bottom corner
        paint = np.asarray(sample_paint(rng), np.float32)
        r = rng.uniform(0.2, 0.6) * h
        mask = np.zeros((h, w), np.float32)
        cv2.ellipse(mask, (0, h), (int(r * rng.uniform(0.6, 1.4)), int(r)), 0, 0, 360, 1.0, -1)
        shade = np.linspace(0.6, 1.1, h, dtype=np.float32)[:, None, None]
        img[:] = img * (1 - mask[..., None]) + (paint * shade) * mask[..., None]

    light = {"day": 1.0, "dusk": 0.5, "night": 0.16}[tod] * rng.uniform(0.85, 1.1)
    tint = np.asarray(
        {"day": (1, 1, 1), "dusk": (0.85, 0.95, 1.1), "night": (1.1, 1, 0.9)}[tod], np.float32
    )
    img = img * light * tint
    if tod == "night":  # lit windows and street lamps
        for _ in range(int(rng.integers(2, 12))):
            x, y = int(rng.uniform(0, w)), int(rng.uniform(0.05, 0.8) * h)
            cv2.circle(img, (x, y), max(1, int(rng.uniform(0.005, 0.02) * w)), (170, 220, 250), -1)
    out = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:  # both orientations of the scene for either camera
        out = out[:, ::-1]
    fx = sample_effects(rng, tod == "night")
    out = apply_camera(np.ascontiguousarray(out), fx, tod == "night", int(rng.integers(2**31)))
    if side == "right":
        out = cv2.flip(out, 1)
    meta = {
        "label": UNDEFINED,
        "side": side,
        "seed": int(seed),
        "size": [w, h],
        "vehicles": [],
        "blocking_box": None,
        "conditions": {
            "time_of_day": tod,
            "weather": "overcast" if overcast else "clear",
            "illumination": round(float(light), 3),
            "undefined_causes": [CAUSE],
            "scenery": kind,
        },
    }
    return out, meta
