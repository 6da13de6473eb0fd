"""Weather, lens and sensor effects applied to a drawn scene, in the order light meets them.

rain streaks and sun glare (in front of the lens) -> dirt/drops on the lens -> optics blur ->
exposure, vignetting, white balance and sensor noise -> JPEG compression -> sensor faults.
The lens-occlusion mask is also rasterised at a small fixed size for the labelling rule, so the
rule and the picture use the same blobs.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from gapcam.synth.specs import Conditions, Effects, LensBlob

#: Width of the grid on which lens coverage is measured for the labels (size-independent).
ANALYSIS_WIDTH = 64


def _blob_outline(b: LensBlob, w: int, h: int, n: int = 24) -> np.ndarray:
    rng = np.random.default_rng(b.wobble)
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    k = np.arange(1, 4)
    amp = rng.uniform(0.02, 0.16, 3) / k
    ph = rng.uniform(0, 2 * math.pi, 3)
    rad = 1.0 + (amp[None, :] * np.sin(t[:, None] * (k + 1) + ph)).sum(1)
    ca, sa = math.cos(math.radians(b.angle_deg)), math.sin(math.radians(b.angle_deg))
    ex = b.rx * w * rad * np.cos(t)
    ey = b.ry * w * rad * np.sin(t)
    return np.stack([b.x * w + ca * ex - sa * ey, b.y * h + sa * ex + ca * ey], 1)


def lens_alpha(blobs: tuple[LensBlob, ...], w: int, h: int, softness: float) -> np.ndarray:
    """Opacity (0..1, float32, h x w) of everything on the lens; soft because out of focus."""
    a = np.zeros((h, w), np.float32)
    for b in blobs:
        tmp = np.zeros((h, w), np.float32)
        pts = np.round(_blob_outline(b, w, h) * 16).astype(np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(tmp, [pts], float(b.opacity), cv2.LINE_8, 4)
        a = np.maximum(a, tmp)
    if softness > 0:
        a = cv2.GaussianBlur(a, (0, 0), max(0.5, softness * w))
    return a


def lens_coverage(blobs: tuple[LensBlob, ...], regions: list[np.ndarray]) -> list[float]:
    """Mean lens opacity over each region mask (all on the analysis grid); empty regions skipped."""
    regions = [r for r in regions if r.sum() > 0]
    if not blobs or not regions:
        return [0.0] * len(regions)
    h, w = regions[0].shape
    a = lens_alpha(blobs, w, h, 0.02)
    return [float((a * r).sum() / r.sum()) for r in regions]


def apply_lens(img: np.ndarray, cond: Conditions, ambient: float) -> np.ndarray:
    """Composite drops, mud, smears or an object stuck to the lens (out of focus, so soft)."""
    if not cond.lens:
        return img
    h, w = img.shape[:2]
    sw, sh = max(16, w // 4), max(16, h // 4)
    soft = {"drops": 0.006, "mud": 0.018, "smear": 0.04, "object": 0.03}.get(
        cond.lens_kind or "", 0.02
    )
    a = lens_alpha(cond.lens, sw, sh, soft)
    a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
    # Blur in image-relative units so the look is the same at 224 px and at 1280 px.
    tw, th = 64, max(8, round(64 * h / w))
    tiny = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
    sigma = 0.8 if cond.lens_kind == "drops" else 2.2
    blurred = cv2.resize(cv2.GaussianBlur(tiny, (0, 0), sigma), (w, h)).astype(np.float32)
    if cond.lens_kind == "drops":
        # A drop is a tiny lens: it shows a blurred, slightly brighter copy of the scene.
        over = blurred * 1.08 + 6
    elif cond.lens_kind == "smear":
        over = blurred * 0.45 + 255 * (0.25 + 0.3 * min(1.0, ambient))
    else:
        rng = np.random.default_rng(cond.lens[0].wobble)
        tex = cv2.resize(
            rng.random((6, 8)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC
        )
        base = np.array(cond.lens[0].color, np.float32)
        lit = 0.2 + 0.55 * min(1.0, ambient)
        over = base * lit * (0.75 + 0.5 * tex[..., None]) + blurred * 0.08
    out = img.astype(np.float32) * (1 - a) + over * a
    return np.clip(out, 0, 255).astype(np.uint8)


def apply_rain(img: np.ndarray, rain: float, ambient: float, seed: int) -> np.ndarray:
    """Faint streaks of falling rain smeared by the exposure, plus a little veiling haze."""
    if rain <= 0.01:
        return img
    h, w = img.shape[:2]
    rng = np.random.default_rng([seed, 21])
    layer = np.zeros((h, w), np.uint8)
    n = int(30 + 100 * rain)
    angle = rng.uniform(-0.2, 0.2)
    scale = w / 224.0
    x = rng.uniform(-0.1 * w, 1.1 * w, n)
    y = rng.uniform(-0.1 * h, h, n)
    ln = rng.uniform(4, 14, n) * scale * (0.6 + 0.6 * rain)
    pts = np.stack([x, y, x + np.sin(angle) * ln, y + np.cos(angle) * ln], 1)
    pts = np.round(pts * 16).astype(np.int32).reshape(n, 2, 2)
    thick = max(1, round(scale * 0.22))
    for k, val in enumerate((45, 80, 120)):
        cv2.polylines(layer, list(pts[k::3]), False, val, thick, cv2.LINE_AA, 4)
    layer = cv2.GaussianBlur(layer, (0, 0), max(0.4, 0.35 * scale))
    gain = 0.35 + 0.45 * min(1.0, ambient + 0.1)
    haze = 0.07 * rain
    out = cv2.addWeighted(img, 1.0 - haze, cv2.cvtColor(layer, cv2.COLOR_GRAY2BGR), gain, 0.0)
    return cv2.add(out, (int(haze * 150 * min(1.0, ambient + 0.2)),) * 3 + (0,))


def apply_glare(img: np.ndarray, sun: tuple[float, float] | None, glare: float) -> np.ndarray:
    """Low sun in or near the view: bloom, veiling glare that lifts blacks, and flare ghosts."""
    if sun is None or glare <= 0.01:
        return img
    h, w = img.shape[:2]
    sw, sh = max(16, w // 4), max(16, h // 4)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    sx, sy = sun[0] * sw, sun[1] * sh
    r = np.hypot(xx - sx, yy - sy) / sw
    core = np.exp(-((r / (0.05 + 0.12 * glare)) ** 2))
    halo = 1.0 / (1.0 + (r / (0.08 + 0.5 * glare)) ** 2)
    field = 1.3 * core + 0.8 * halo * glare
    ghosts = np.zeros((sh, sw), np.float32)
    cx, cy = sw / 2, sh / 2
    for t, rad, k in ((0.6, 0.05, 0.25), (1.3, 0.03, 0.35), (1.7, 0.08, 0.15), (2.1, 0.04, 0.3)):
        gx, gy = sx + (cx - sx) * t, sy + (cy - sy) * t
        cv2.circle(ghosts, (int(gx), int(gy)), max(1, int(rad * sw)), k, -1, cv2.LINE_AA)
    field += cv2.GaussianBlur(ghosts, (0, 0), 1.0) * glare
    veil = 0.7 * glare**1.5
    field = cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
    warm = np.array([200, 232, 255], np.float32)
    f = img.astype(np.float32)
    out = f * (1 - veil) + warm * veil + field * warm * glare
    return np.clip(out, 0, 255).astype(np.uint8)


def _vignette(w: int, h: int, strength: float) -> np.ndarray:
    """Corner fall-off, computed coarse and upsampled (it is smooth)."""
    sw, sh = 64, max(8, round(64 * h / w))
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    r2 = ((xx + 0.5 - sw / 2) / (sw / 2)) ** 2 + ((yy + 0.5 - sh / 2) / (sw / 2)) ** 2
    v = (1.0 - strength * np.clip(r2 / 1.6, 0, 1) ** 1.4).astype(np.float32)
    return cv2.resize(v, (w, h), interpolation=cv2.INTER_LINEAR)


_NOISE_BANK: list[np.ndarray] = []


def _noise_bank(n: int) -> np.ndarray:
    """A fixed bank of unit-variance noise (int16, x64): slicing it at a seeded offset is far
    cheaper than drawing millions of normals per frame, and just as deterministic."""
    need = n + (1 << 20)
    if not _NOISE_BANK or len(_NOISE_BANK[0]) < need:
        size = max(need, 4 << 20)
        rng = np.random.default_rng(20170611)
        bank = np.clip(rng.standard_normal(size, dtype=np.float32) * 64.0, -32000, 32000)
        _NOISE_BANK[:] = [bank.astype(np.int16)]
    return _NOISE_BANK[0]


def soft_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur that switches to blur-at-lower-resolution for wide kernels (speed)."""
    if sigma <= 2.0:
        return cv2.GaussianBlur(img, (0, 0), sigma)
    h, w = img.shape[:2]
    k = max(1, int(sigma // 1.5))
    small = cv2.resize(img, (max(2, w // k), max(2, h // k)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / k)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def apply_camera(img: np.ndarray, fx: Effects, night: bool, seed: int) -> np.ndarray:
    """Optics and sensor: blur, exposure x vignetting x white balance, noise, JPEG."""
    h, w = img.shape[:2]
    scale = w / 224.0
    if fx.blur * scale > 0.35:
        img = soft_blur(img, fx.blur * scale)
    if fx.motion_blur * scale >= 2:
        n = int(round(fx.motion_blur * scale))
        img = cv2.blur(img, (n, 1))
    rng = np.random.default_rng([seed, 22])
    gain = cv2.cvtColor(_vignette(w, h, fx.vignetting), cv2.COLOR_GRAY2BGR)
    wb = tuple(fx.exposure * g for g in fx.white_balance) + (0.0,)
    img = cv2.multiply(img, cv2.multiply(gain, wb), dtype=cv2.CV_8U)
    sigma = fx.noise * math.sqrt(max(fx.exposure, 0.3)) * (1.6 if night else 1.0)
    bank = _noise_bank(3 * h * w)
    o1, o2 = (int(x) for x in rng.integers(0, len(bank) - 3 * h * w, 2))
    luma = bank[o1 : o1 + h * w].reshape(h, w)
    chroma = bank[o2 : o2 + 3 * h * w].reshape(h, w, 3)
    noise = cv2.addWeighted(
        cv2.merge([luma, luma, luma]),
        sigma / 64.0,
        chroma,
        0.45 * sigma / 64.0,
        0.0,
        dtype=cv2.CV_16S,
    )
    out = cv2.add(img, noise, dtype=cv2.CV_8U)
    if fx.jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(fx.jpeg_quality)])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


def apply_fault(img: np.ndarray, fault: str | None, seed: int) -> np.ndarray:
    """Broken sensor or link: the frame no longer shows the scene."""
    if fault is None or fault == "frozen":  # a frozen frame is a repeated, intact one
        return img
    h, w = img.shape[:2]
    rng = np.random.default_rng([seed, 23])
    if fault == "black":
        base = rng.normal(4, 2.5, (h, w, 1)).astype(np.float32)
        out = base + rng.normal(0, 1.5, (h, w, 3)) + img.astype(np.float32) * 0.02
    elif fault == "saturated":
        out = 238 + img.astype(np.float32) * 0.06 + rng.normal(0, 2.0, (h, w, 3))
    elif fault == "stripes":
        out = img.astype(np.float32)
        y = 0
        vertical = rng.random() < 0.3
        n = w if vertical else h
        arr = out.transpose(1, 0, 2).copy() if vertical else out
        while y < n:
            band = int(rng.integers(max(2, n // 40), max(4, n // 8)))
            mode = rng.choice(
                ["keep", "color", "repeat", "shift", "noise"], p=[0.15, 0.3, 0.2, 0.2, 0.15]
            )
            sl = slice(y, min(n, y + band))
            if mode == "color":
                arr[sl] = rng.uniform(0, 255, 3)
            elif mode == "repeat":
                arr[sl] = arr[y]
            elif mode == "shift":
                arr[sl] = np.roll(
                    arr[sl], int(rng.integers(arr.shape[1] // 6, arr.shape[1] // 2)), 1
                )[..., ::-1]
            elif mode == "noise":
                arr[sl] = rng.uniform(0, 255, arr[sl].shape)
            y += band
        out = arr.transpose(1, 0, 2) if vertical else arr
    else:  # blocks: a broken decoder or a dropped packet
        out = img.astype(np.float32)
        b = max(8, (w // 224) * 16)
        for by in range(0, h, b):
            for bx in range(0, w, b):
                r = rng.random()
                if r < 0.45:
                    out[by : by + b, bx : bx + b] = (
                        (0, 135, 0) if rng.random() < 0.5 else rng.uniform(60, 200)
                    )
                elif r < 0.7:
                    sy, sx = (
                        int(rng.integers(0, max(1, h - b))),
                        int(rng.integers(0, max(1, w - b))),
                    )
                    patch = out[sy : sy + b, sx : sx + b]
                    tgt = out[by : by + b, bx : bx + b]
                    tgt[:] = patch[: tgt.shape[0], : tgt.shape[1]]
    return np.clip(out, 0, 255).astype(np.uint8)
