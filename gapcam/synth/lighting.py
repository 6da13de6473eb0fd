"""Scene illumination and fog: how an albedo colour at a given distance ends up on the sensor.

Every drawn colour goes through :meth:`Lighting.lit`, so night, dusk and fog act consistently on the
road, the furniture, the other vehicles and the ego body without a separate full-image pass.
Fog follows Koschmieder's law: at the meteorological visibility the contrast has dropped to 5 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gapcam.synth.specs import BGR, Conditions

#: (zenith, horizon) sky colours, BGR, drawn directly (the sky is a light source, not an albedo).
_SKY: dict[tuple[str, str], tuple[BGR, BGR]] = {
    ("day", "clear"): ((205, 150, 95), (238, 222, 205)),
    ("day", "overcast"): ((178, 174, 170), (212, 212, 210)),
    ("day", "rain"): ((146, 144, 141), (182, 182, 180)),
    ("dusk", "clear"): ((120, 78, 66), (115, 172, 238)),
    ("dusk", "overcast"): ((112, 100, 98), (128, 146, 172)),
    ("dusk", "rain"): ((96, 88, 86), (118, 126, 140)),
    ("night", "clear"): ((24, 13, 9), (46, 32, 27)),
    ("night", "overcast"): ((26, 22, 20), (44, 40, 38)),
    ("night", "rain"): ((22, 20, 19), (40, 38, 36)),
}

#: Colour of the ambient light per time of day (multiplies albedos).
_HUE: dict[str, tuple[float, float, float]] = {
    "day": (1.0, 1.0, 1.0),
    "dusk": (0.78, 0.86, 1.05),
    "night": (1.15, 1.0, 0.88),
    "night_sodium": (0.55, 0.82, 1.12),
}


@dataclass(frozen=True)
class Lighting:
    """Derived, per-scene lighting state (cheap to build, so built per render)."""

    tint: tuple[float, float, float]
    fog_bgr: tuple[float, float, float]
    visibility_m: float | None
    sky_zenith: BGR
    sky_horizon: BGR
    ambient: float
    night: bool

    def fog(self, distance_m: float) -> float:
        if self.visibility_m is None:
            return 0.0
        return 1.0 - math.exp(-3.0 * max(distance_m, 0.0) / self.visibility_m)

    def fog_array(self, distance_m: np.ndarray) -> np.ndarray:
        if self.visibility_m is None:
            return np.zeros_like(distance_m, dtype=np.float32)
        d = np.where(np.isfinite(distance_m), distance_m, 1e9)
        return (1.0 - np.exp(-3.0 * np.maximum(d, 0.0) / self.visibility_m)).astype(np.float32)

    def lit(self, albedo: BGR | np.ndarray, distance_m: float = 0.0, shade: float = 1.0) -> BGR:
        """Albedo under the scene light, seen through fog at ``distance_m``; ints for OpenCV."""
        f = self.fog(distance_m)
        c = [albedo[i] * self.tint[i] * shade * (1.0 - f) + self.fog_bgr[i] * f for i in range(3)]
        return tuple(int(min(255, max(0, round(v)))) for v in c)  # type: ignore[return-value]


def sky_colors(cond: Conditions) -> tuple[BGR, BGR]:
    weather = cond.weather if cond.weather in ("clear", "overcast", "rain") else "overcast"
    zen, hor = _SKY[(cond.time_of_day, weather)]
    if cond.time_of_day == "night" and cond.street_lights:
        hor = (48, 66, 88)  # light pollution glow near the horizon
    if cond.ambient < 0.06:  # nothing lit: the sky is as dark as the road
        zen = tuple(int(c * 0.35) for c in zen)  # type: ignore[assignment]
        hor = tuple(int(c * 0.35) for c in hor)  # type: ignore[assignment]
    return zen, hor


def make_lighting(cond: Conditions) -> Lighting:
    """Ambient tint and fog colour for the conditions."""
    hue_key = cond.time_of_day
    if cond.time_of_day == "night" and cond.street_lights:
        hue_key = "night_sodium"
    hue = _HUE[hue_key]
    tint = tuple(h * cond.ambient for h in hue)
    zen, hor = sky_colors(cond)
    if cond.fog_visibility_m is not None:
        # Fog scatters whatever light there is: bright grey by day, a dim glow at night.
        base = np.array([208.0, 208.0, 204.0]) * min(1.0, cond.ambient * 1.05)
        if cond.time_of_day == "night":
            base = np.array(hor, dtype=float) * 1.3 + 6.0
        elif cond.time_of_day == "dusk":
            base = 0.6 * base + 0.4 * np.array(hor, dtype=float)
        fog = tuple(float(c) for c in base)
        zen = hor = tuple(int(c) for c in base)  # type: ignore[assignment]
    else:
        fog = tuple(float(c) for c in hor)
    return Lighting(
        tint=tint,  # type: ignore[arg-type]
        fog_bgr=fog,  # type: ignore[arg-type]
        visibility_m=cond.fog_visibility_m,
        sky_zenith=zen,
        sky_horizon=hor,
        ambient=cond.ambient,
        night=cond.time_of_day == "night",
    )
