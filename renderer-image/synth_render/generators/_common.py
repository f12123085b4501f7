"""Building blocks shared by the category generators: colours, materials, framing, layout.

Pure functions of their arguments and of the random generator passed in.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np

from synth_render.scene import (
    PATTERNS,
    Camera,
    Color,
    Light,
    Material,
    Part,
    Pattern,
    Primitive,
    Vec3,
    World,
)


def lerp(a: float, b: float, u: float) -> float:
    return a + (b - a) * u


def pick(options: tuple, u: float):  # type: ignore[no-untyped-def]
    """The option a stratum coordinate ``u`` in [0,1) falls into."""
    return options[min(int(u * len(options)), len(options) - 1)]


def hsv(h: float, s: float, v: float) -> Color:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(r, 4), round(g, 4), round(b, 4))


def color(rng: np.random.Generator, *, hue: float | None = None, sat: tuple[float, float] = (0.4, 0.9),
          val: tuple[float, float] = (0.4, 0.9)) -> Color:
    h = rng.random() if hue is None else hue
    return hsv(h, rng.uniform(*sat), rng.uniform(*val))


def material(rng: np.random.Generator, *, pattern: Pattern | None = None, hue: float | None = None,
             metallic: float | None = None, roughness: float | None = None,
             transmission: float = 0.0, emission: float = 0.0) -> Material:
    c = color(rng, hue=hue)
    return Material(
        color=c,
        color2=color(rng, hue=(rng.random() if hue is None else hue + 0.5)),
        pattern=pattern if pattern is not None else PATTERNS[int(rng.integers(len(PATTERNS)))],
        pattern_scale=round(float(rng.uniform(2.0, 12.0)), 3),
        roughness=round(float(rng.uniform(0.15, 0.8) if roughness is None else roughness), 3),
        metallic=round(float((1.0 if rng.random() < 0.2 else 0.0) if metallic is None else metallic), 3),
        transmission=transmission,
        emission=emission,
        bump=round(float(rng.uniform(0.0, 0.3)), 3),
    )


def ground(rng: np.random.Generator, *, size: float = 40.0, pattern: Pattern | None = None) -> Part:
    m = material(rng, pattern=pattern if pattern is not None else ("checker" if rng.random() < 0.3 else "noise"),
                 metallic=0.0, roughness=0.7)
    m = Material(**{**m.__dict__, "color": color(rng, sat=(0.0, 0.3), val=(0.25, 0.6)),
                    "color2": color(rng, sat=(0.0, 0.3), val=(0.1, 0.4))})
    return Part("plane", m, scale=(size, size, 1.0))


def scatter(rng: np.random.Generator, n: int, radius: float, min_dist: float) -> list[tuple[float, float]]:
    """Up to ``n`` points in a disc, at least ``min_dist`` apart (rejection sampling)."""
    pts: list[tuple[float, float]] = []
    for _ in range(n * 30):
        if len(pts) == n:
            break
        r = radius * math.sqrt(rng.random())
        a = rng.uniform(0, 2 * math.pi)
        p = (r * math.cos(a), r * math.sin(a))
        if all((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 >= min_dist**2 for q in pts):
            pts.append(p)
    return pts


def orbit_camera(target: Vec3, *, radius: float, azimuth: float, elevation: float, focal_mm: float = 35.0,
                 aspect: float = 1.0, margin: float = 1.25, roll: float = 0.0, fstop: float = 0.0) -> Camera:
    """A camera on a sphere around ``target`` far enough to frame a ball of ``radius``."""
    sensor = 36.0
    # Horizontal sensor fit: the sensor spans the width, so a wide image has the narrow vertical fov.
    half_fov = math.atan(sensor / 2 / focal_mm / max(aspect, 1.0))
    dist = margin * radius / math.sin(half_fov)
    loc = (
        target[0] + dist * math.cos(elevation) * math.cos(azimuth),
        target[1] + dist * math.cos(elevation) * math.sin(azimuth),
        target[2] + dist * math.sin(elevation),
    )
    return Camera(location=_r3(loc), look_at=_r3(target), focal_mm=round(focal_mm, 3), sensor_mm=sensor,
                  roll=round(roll, 4), fstop=fstop)


def key_lights(rng: np.random.Generator, *, strength: float = 1.0) -> tuple[Light, ...]:
    """A sun and a soft area fill: a plain, well-exposed default."""
    sun = Light("sun", (0.0, 0.0, 10.0), rotation=(round(float(rng.uniform(0.2, 0.9)), 4), 0.0,
                                                   round(float(rng.uniform(0, 2 * math.pi)), 4)),
                energy=round(3.0 * strength, 3), color=hsv(0.1, float(rng.uniform(0, 0.2)), 1.0), size=0.05)
    fill_az = float(rng.uniform(0, 2 * math.pi))
    fill = Light("area", _r3((6 * math.cos(fill_az), 6 * math.sin(fill_az), 5.0)), energy=round(300.0 * strength, 3),
                 size=4.0)
    return sun, _aim(fill, (0.0, 0.0, 0.0))


def sky(rng: np.random.Generator, *, strength: float = 1.0) -> World:
    return World(color=hsv(0.58 + float(rng.uniform(-0.05, 0.05)), float(rng.uniform(0.2, 0.5)), 0.8),
                 strength=round(0.6 * strength, 3))


def _aim(light: Light, target: Vec3) -> Light:
    """Rotate a light (which shines down its -Z) towards a target."""
    dx, dy, dz = (target[i] - light.location[i] for i in range(3))
    pitch = math.atan2(math.hypot(dx, dy), -dz)
    yaw = math.atan2(-dx, dy)
    return Light(light.kind, light.location, rotation=(round(pitch, 4), 0.0, round(yaw, 4)), energy=light.energy,
                 color=light.color, size=light.size)


def aim(light: Light, target: Vec3) -> Light:
    return _aim(light, target)


def _r3(v: tuple[float, float, float] | Vec3) -> Vec3:
    return (round(float(v[0]), 4), round(float(v[1]), 4), round(float(v[2]), 4))


r3 = _r3


def choose(rng: np.random.Generator, options: tuple[Primitive, ...]) -> Primitive:
    """A uniformly chosen primitive."""
    return options[int(rng.integers(len(options)))]


_LABELS = {"rounded_cube": "cube", "rock_a": "rock", "rock_b": "rock", "rock_c": "rock", "dome": "dome"}


def label(shape: str) -> str:
    """The class name of a single-shape object (a bevelled cube is a cube, a displaced ico a rock)."""
    return _LABELS.get(shape, shape)
