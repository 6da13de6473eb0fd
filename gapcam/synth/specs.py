"""Plain-data descriptions of a scene: what the sampler decides and the renderer draws.

Keeping the scene as frozen dataclasses (no pixels, no RNG) is what lets a sequence re-render the
same road and the same cars frame after frame with only positions changed, and lets the labelling
rules be applied to the description rather than to pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gapcam.synth.geometry import Camera, make_camera

BGR = tuple[int, int, int]

#: Lane names, from the ego lane outwards (left camera: towards image-right).
LANES = ("right", "ego", "adjacent", "beyond")
_LANE_INDEX = {"right": -1, "ego": 0, "adjacent": 1, "beyond": 2}


@dataclass(frozen=True)
class CameraSpec:
    """Mounting of the mirror camera; sizes come later so one spec renders at any resolution."""

    hfov_deg: float
    yaw_deg: float
    horizon_frac: float
    roll_deg: float
    height_m: float

    def camera(self, size: tuple[int, int]) -> Camera:
        return make_camera(
            size[0],
            size[1],
            self.hfov_deg,
            self.yaw_deg,
            self.horizon_frac,
            self.roll_deg,
            self.height_m,
        )


@dataclass(frozen=True)
class RoadSpec:
    """Lane layout (lateral positions in metres, + towards the ego's left) and road furniture."""

    lane_width: float
    ego_lane_center: float
    lanes_left: int  # 0: no adjacent lane (kerb/barrier), 1: adjacent lane, 2: a lane beyond it
    lanes_right: int
    curvature: float  # 1/m, signed
    shoulder_left: float
    barrier: str  # "guardrail" | "concrete" | "none"
    verge: str  # "grass" | "dry"
    marking_bgr: BGR
    edge_bgr: BGR
    dash_length: float
    dash_gap: float
    asphalt_bgr: BGR
    trees: float  # trees per 100 m beyond the verge
    lamps: bool
    texture_seed: int
    solid_divider: bool = False  # ego/adjacent separated by a solid line instead of dashes
    travelled_m: float = 0.0  # distance driven so far: road features move past the camera

    def boundary(self, i: int) -> float:
        """Lateral position of lane boundary ``i``: 0 = ego lane left edge, -1 = its right edge."""
        return self.ego_lane_center + self.lane_width * (i + 0.5)

    def lane_center(self, lane: str) -> float:
        return self.ego_lane_center + self.lane_width * _LANE_INDEX[lane]

    @property
    def left_edge(self) -> float:
        return self.boundary(self.lanes_left)

    @property
    def right_edge(self) -> float:
        return self.boundary(-1 - self.lanes_right)

    @property
    def barrier_x(self) -> float:
        return self.left_edge + self.shoulder_left

    def has_lane(self, lane: str) -> bool:
        i = _LANE_INDEX[lane]
        return -self.lanes_right <= i <= self.lanes_left


@dataclass(frozen=True)
class VehicleSpec:
    """One road user. ``distance_m`` is the longitudinal distance from the camera back to the
    vehicle's front bumper (negative once the front is ahead of the camera, i.e. alongside)."""

    kind: str  # car | suv | van | truck | motorbike
    lane: str
    lateral_offset: float  # from the lane centre, m
    distance_m: float
    length: float
    width: float
    height: float
    hood_height: float
    hood_length: float
    screen_length: float
    wheel_radius: float
    color: BGR
    trim: BGR  # trailer / rider / bumper colour
    lights_on: bool

    @property
    def rear_m(self) -> float:
        return self.distance_m + self.length


@dataclass(frozen=True)
class EgoSpec:
    """The camera's own car, seen as a strip at the image's left edge."""

    color: BGR
    side_x: float  # lateral position of the door panel (camera at 0)
    tail_m: float  # distance from the camera to the ego's rear bumper
    belt_height: float
    housing: str | None  # mirror housing in a corner: "top", "bottom" or None
    housing_size: float  # fraction of the image width


@dataclass(frozen=True)
class LensBlob:
    """Something on the lens, in image-normalised coordinates (x by width, y by height)."""

    x: float
    y: float
    rx: float  # radii as a fraction of the image width
    ry: float
    angle_deg: float
    opacity: float  # 0..1 at the blob's core
    color: BGR
    wobble: int  # seed of the outline's irregularity


@dataclass(frozen=True)
class Effects:
    """Camera and sensor imperfections applied after the scene is drawn."""

    exposure: float  # gain, 1 = nominal
    white_balance: tuple[float, float, float]  # B, G, R gains
    noise: float  # sensor noise sigma (0..255 scale) at nominal gain
    blur: float  # optical blur sigma as a fraction of 1/224 of the width (1.0 = 1 px at 224)
    motion_blur: float  # horizontal motion streak length, same unit
    jpeg_quality: int | None  # recompression artefacts (None: none)
    vignetting: float  # corner darkening, 0..1


@dataclass(frozen=True)
class Conditions:
    """Light, weather, lens state and sensor health."""

    time_of_day: str  # day | dusk | night
    ambient: float  # scene illumination reaching the sensor, 1 = bright day
    street_lights: bool
    weather: str  # clear | overcast | rain | fog
    fog_visibility_m: float | None  # meteorological visibility, None: no fog
    rain: float  # 0..1 streak density
    sun: tuple[float, float] | None  # sun position, image-normalised (may be off-image)
    glare: float  # 0..1: 0 none, 1 washes the frame out
    lens_kind: str | None  # None | drops | mud | smear | object
    lens: tuple[LensBlob, ...] = ()
    sensor_fault: str | None = None  # None | black | stripes | saturated | blocks
    clouds: float = 0.3
    scenery: str = "trees"  # trees | hills | city


@dataclass(frozen=True)
class SceneSpec:
    """Everything needed to render one image deterministically."""

    seed: int
    side: str  # left | right
    camera: CameraSpec
    road: RoadSpec
    ego: EgoSpec
    vehicles: tuple[VehicleSpec, ...]
    conditions: Conditions
    effects: Effects
    noise_seed: int  # per-frame randomness (sensor noise, rain streaks)
    extra: dict = field(default_factory=dict, compare=False, hash=False)
