"""The labelling rules of the synthetic rear-side scenes: the only place they are written down.

Terms
-----
* *adjacent lane*: the lane next to the ego lane on the camera's side (left camera: the ego's
  left lane, towards image-right; the right camera is the mirror image).
* *distance* (``distance_m``): longitudinal distance from the camera back to a vehicle's front
  bumper; negative once the front has passed the camera (the vehicle is alongside).
* *visible*: the vehicle's ground-truth box, clipped to the image, is at least
  ``MIN_VISIBLE_WIDTH_FRAC`` of the image width wide. A vehicle that has driven out of the field
  of view counts as not there: the label describes what the image shows.

Rules, applied in this order
----------------------------
1. ``undefined`` if the adjacent lane cannot be judged, whatever vehicles are there. Any of:

   * ``no_adjacent_lane``: there is no lane on the camera's side (barrier or verge next to the
     ego lane);
   * ``lens_occluded``: things on the lens (mud, a smear, an object, heavy drops) have a mean
     opacity of at least ``LENS_UNDEFINED_COVERAGE`` over the adjacent-lane region in *every*
     distance band of ``LENS_BANDS_M`` (the region of a band is the lane's road surface between
     the band's distances and 1.5 m above it, as projected into the image), so a vehicle at any
     range in the lane would be hidden;
   * ``too_dark``: scene illumination below ``DARK_UNDEFINED_AMBIENT`` (night without street
     lights, vehicle lights or moon; 1.0 = full daylight);
   * ``sun_glare``: glare strength at least ``GLARE_UNDEFINED_STRENGTH`` (0..1);
   * ``dense_fog``: meteorological visibility below ``FOG_UNDEFINED_VISIBILITY_M``: a vehicle
     at the far end of the judged range could not be seen;
   * ``sensor_fault``: the frame is black, saturated, striped or block-corrupted, or (sequences
     only) ``frozen``: the link repeats an old frame.

2. ``blocked`` if a visible vehicle (any kind) in the adjacent lane has
   ``distance_m <= DANGER_ZONE_M`` (alongside included). The *blocking* vehicle is the one with
   the smallest distance; its box is ``blocking_box``.

3. ``free`` otherwise: the adjacent lane is visible and holds no vehicle inside the danger zone.

Clean margins (a sampling policy, not a rule)
---------------------------------------------
Single images (``render_scene``) never place an adjacent-lane vehicle with
``DANGER_ZONE_M < distance_m < FREE_BEYOND_M``, so every ``free`` image's adjacent-lane vehicles
are at least ``FREE_BEYOND_M`` away, and a blocking vehicle is at least
``SAMPLED_BLOCKER_MIN_WIDTH_FRAC`` of the image wide. Likewise benign conditions keep clear of the
thresholds: fog visibility >= ``FOG_OK_VISIBILITY_M``, lens coverage < ``LENS_OK_COVERAGE`` in
every band (drops, dust), undefined lens scenes >= ``LENS_SAMPLED_COVERAGE`` in every band,
illumination >= ``DARK_OK_AMBIENT``, glare <= ``GLARE_OK_STRENGTH``. Vehicles in the ego lane and in
lanes beyond the adjacent one are distractors in every class. Sequences do cross the margins (a
vehicle drives through them); the rules above decide each frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gapcam.labels import BLOCKED, FREE, UNDEFINED

DANGER_ZONE_M = 20.0
FREE_BEYOND_M = 35.0
MIN_VISIBLE_WIDTH_FRAC = 0.04

LENS_UNDEFINED_COVERAGE = 0.4
LENS_BANDS_M = (2.0, 8.0, 18.0, FREE_BEYOND_M)
DARK_UNDEFINED_AMBIENT = 0.06
GLARE_UNDEFINED_STRENGTH = 0.6
FOG_UNDEFINED_VISIBILITY_M = 30.0
SENSOR_FAULTS = ("black", "stripes", "saturated", "blocks")  # drawn into single images
FROZEN = "frozen"  # sequences only: a repeated frame looks normal on its own

# Sampling margins for single images (see the module docstring).
SAMPLED_BLOCKER_MIN_WIDTH_FRAC = 0.12
LENS_OK_COVERAGE = 0.15
LENS_SAMPLED_COVERAGE = 0.6
DARK_OK_AMBIENT = 0.12
GLARE_OK_STRENGTH = 0.3
FOG_OK_VISIBILITY_M = 80.0

UNDEFINED_CAUSES = (
    "no_adjacent_lane",
    "lens_occluded",
    "too_dark",
    "sun_glare",
    "dense_fog",
    "sensor_fault",
)


@dataclass(frozen=True)
class SeenVehicle:
    """What the rules need to know about a vehicle in the image."""

    lane: str
    distance_m: float
    box: tuple[int, int, int, int] | None  # clipped to the image; None if out of view


@dataclass(frozen=True)
class ViewFacts:
    """What the rules need to know about the view itself."""

    image_width: int
    adjacent_lane: bool
    lens_coverage: float  # the smallest per-band coverage (see the rules)
    ambient: float
    glare: float
    fog_visibility_m: float | None
    sensor_fault: str | None


@dataclass(frozen=True)
class Judgement:
    label: str
    blocking_index: int | None = None
    causes: tuple[str, ...] = field(default_factory=tuple)


def undefined_causes(facts: ViewFacts) -> tuple[str, ...]:
    """Every reason the adjacent lane cannot be judged (empty when it can)."""
    causes = []
    if not facts.adjacent_lane:
        causes.append("no_adjacent_lane")
    if facts.lens_coverage >= LENS_UNDEFINED_COVERAGE:
        causes.append("lens_occluded")
    if facts.ambient < DARK_UNDEFINED_AMBIENT:
        causes.append("too_dark")
    if facts.glare >= GLARE_UNDEFINED_STRENGTH:
        causes.append("sun_glare")
    if facts.fog_visibility_m is not None and facts.fog_visibility_m < FOG_UNDEFINED_VISIBILITY_M:
        causes.append("dense_fog")
    if facts.sensor_fault is not None:
        causes.append("sensor_fault")
    return tuple(causes)


def is_visible(v: SeenVehicle, image_width: int) -> bool:
    if v.box is None:
        return False
    return (v.box[2] - v.box[0]) >= MIN_VISIBLE_WIDTH_FRAC * image_width


def blocking_index(vehicles: Sequence[SeenVehicle], image_width: int) -> int | None:
    """Index of the nearest visible adjacent-lane vehicle inside the danger zone, if any."""
    best = None
    for i, v in enumerate(vehicles):
        in_zone = v.lane == "adjacent" and v.distance_m <= DANGER_ZONE_M
        if (
            in_zone
            and is_visible(v, image_width)
            and (best is None or v.distance_m < vehicles[best].distance_m)
        ):
            best = i
    return best


def judge(vehicles: Sequence[SeenVehicle], facts: ViewFacts) -> Judgement:
    """Apply the rules of this module's docstring."""
    causes = undefined_causes(facts)
    if causes:
        return Judgement(UNDEFINED, None, causes)
    idx = blocking_index(vehicles, facts.image_width)
    if idx is not None:
        return Judgement(BLOCKED, idx)
    return Judgement(FREE)
