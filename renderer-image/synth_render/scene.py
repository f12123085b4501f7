"""The scene description: what a generator returns and what the Blender driver builds.

Plain frozen dataclasses, no Blender. A generator builds a :class:`Scene` from its config and
random generator; the driver (``synth_render.blender.renderer``) turns it into Blender data-blocks;
the metadata writer stores ``scene_to_dict(scene)`` so that the exact configuration of every
sample is on record. Units are Blender's: metres, radians, watts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Vec3 = tuple[float, float, float]
Color = tuple[float, float, float]

Primitive = Literal["cube", "sphere", "ico", "cylinder", "cone", "torus", "plane"]
PRIMITIVES: tuple[Primitive, ...] = ("cube", "sphere", "ico", "cylinder", "cone", "torus", "plane")
"""The seven basic shapes (the ``geometry`` category labels objects with these names)."""

Recipe = Literal["rounded_cube", "capsule", "cup", "bottle", "rock_a", "rock_b", "rock_c", "blob", "car_body",
                 "car_cabin", "tyre", "rim", "dome", "slab"]
RECIPES: tuple[Recipe, ...] = ("rounded_cube", "capsule", "cup", "bottle", "rock_a", "rock_b", "rock_c", "blob",
                               "car_body", "car_cabin", "tyre", "rim", "dome", "slab")
"""Mesh recipes: smoother shapes (bevelled, displaced, lathed, extruded) built once per worker."""

Shape = Primitive | Recipe

_UNIT = ((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5))
SHAPE_BOUNDS: dict[str, tuple[Vec3, Vec3]] = {
    **{name: _UNIT for name in (*PRIMITIVES, *RECIPES)},
    "torus": ((-0.5, -0.5, -0.15), (0.5, 0.5, 0.15)),
    "tyre": ((-0.5, -0.5, -0.2), (0.5, 0.5, 0.2)),
    "plane": ((-0.5, -0.5, 0.0), (0.5, 0.5, 0.0)),
    "dome": ((-0.5, -0.5, 0.0), (0.5, 0.5, 0.5)),
}
"""Axis-aligned bounds of each unit shape in its own frame; the Blender meshes fit them exactly."""

Pattern = Literal["plain", "noise", "checker", "voronoi", "wave", "magic", "brick", "windows", "wood", "tiles"]
PATTERNS: tuple[Pattern, ...] = ("plain", "noise", "checker", "voronoi", "wave", "magic")
"""Patterns that generators draw at random; ``brick``, ``windows``, ``wood`` and ``tiles`` are chosen on purpose."""


@dataclass(frozen=True)
class Texture:
    """A PBR texture set (base colour, roughness, normal, metallic maps) from a texture source."""

    uri: str
    """The source, as written in ``spec.assets.textures`` (``file:///dir``, ``s3://...``, ``builtin:NAME``)."""
    id: str
    """The set's folder inside the source."""
    tile: float = 1.0
    """Metres covered by one repeat of the images."""


@dataclass(frozen=True)
class Environment:
    """An HDRI that lights the scene (and backs it when ``visible``)."""

    uri: str
    """The source, as written in ``spec.assets.environments`` (``builtin:studiolights`` by default)."""
    id: str
    """The image's path inside the source (``forest.exr``)."""
    strength: float = 1.0
    rotation: float = 0.0
    """Radians about +Z."""
    visible: bool = True
    """False: the HDRI lights the scene but the camera sees ``World.color`` behind it."""


@dataclass(frozen=True)
class Material:
    """A procedural Principled material: two colours mixed by a texture pattern."""

    color: Color = (0.8, 0.8, 0.8)
    color2: Color = (0.2, 0.2, 0.2)
    pattern: Pattern = "plain"
    pattern_scale: float = 5.0
    roughness: float = 0.5
    metallic: float = 0.0
    transmission: float = 0.0
    ior: float = 1.45
    emission: float = 0.0
    bump: float = 0.0
    texture: Texture | None = None
    """A PBR texture set replacing the procedural colour, roughness and bump (when the set loads)."""


@dataclass(frozen=True)
class Part:
    """One mesh (a primitive or a recipe) of an object, placed relative to the object's origin."""

    primitive: Shape
    material: Material
    location: Vec3 = (0.0, 0.0, 0.0)
    rotation: Vec3 = (0.0, 0.0, 0.0)
    scale: Vec3 = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class AssetRef:
    """A mesh from an asset library (``spec.assets.libraries``), placed instead of primitive parts.

    The Blender layer imports it once per worker and normalises it: largest dimension ``size``
    metres, centred on the object's origin in x and y, its base at the origin's z (it rests on
    whatever the object's ``location`` is on). If it cannot be imported the object is left out
    of the render and the asset is listed in ``assetsRejected``.
    """

    library: str
    id: str
    """Path inside the library, ``{class}/{assetId}.{ext}``."""
    uri: str
    """The library's URI (``spec.assets.libraries[].uri``)."""
    cls: str
    """The library class (the object's ``cls`` while the asset renders)."""
    size: float
    """Largest dimension after normalisation, metres."""
    license: str = "unknown"
    attribution: str = ""
    color: Color | None = None
    """Base colour for an asset that brings no material of its own (STL, PLY without colours)."""


@dataclass(frozen=True)
class Simulation:
    """A simulated liquid or smoke/fire drawn as this object (``synth_render.simulation`` bakes it).

    Coordinates are world coordinates (the object's own transform is the identity).
    """

    kind: Literal["liquid", "smoke", "fire"]
    scenario: str
    """liquid: ``pour`` | ``fill`` | ``splash``; smoke/fire: ``plume``."""
    seed: int
    tier: int
    """Resolution tier 0..2 (from the scene's complexity)."""
    origin: Vec3
    """Centre of the domain's base."""
    size: Vec3
    """Domain extent (metres)."""
    container: tuple[float, float, float, float, float] | None = None
    """A glass the liquid collides with: (x, y, inner radius, inner floor z, rim z)."""
    ground: float = 0.0
    volume: float = 0.0
    """Liquid volume, m³."""
    angle: float = 0.0
    """Pour direction / wind direction, radians about +Z."""
    wind: float = 0.0
    source: float = 0.15
    """Smoke source radius as a share of the domain width."""
    part: Literal["all", "flame", "smoke"] = "all"
    """Which particles this object draws (fire: flame = young, smoke = old)."""
    material: Material = field(default_factory=Material)
    density: float = 0.0
    """Volume density (smoke/fire, per metre)."""
    temperature: float = 0.0
    """Flame blackbody temperature, kelvin (fire)."""

    def cache_key(self) -> Simulation:
        """The parameters the bake depends on (not how an object draws it)."""
        return replace(self, part="all", material=Material(), density=0.0, temperature=0.0)


@dataclass(frozen=True)
class SceneObject:
    """A labelled object: its parts share one instance id in the segmentation."""

    id: int
    cls: str
    parts: tuple[Part, ...]
    location: Vec3 = (0.0, 0.0, 0.0)
    rotation: Vec3 = (0.0, 0.0, 0.0)
    scale: Vec3 = (1.0, 1.0, 1.0)
    velocity: Vec3 = (0.0, 0.0, 0.0)
    """Metres per frame; a non-zero velocity is rendered with motion blur."""
    distractor: bool = False
    """Clutter around the subject objects (labelled like any object, flagged in the sample JSON)."""
    asset: AssetRef | None = None
    """A library mesh drawn instead of ``parts`` (an object with an asset has no parts)."""
    simulation: Simulation | None = None
    """A simulated liquid/smoke/fire drawn instead of ``parts`` (``synth_render.simulation``)."""


@dataclass(frozen=True)
class Light:
    kind: Literal["sun", "point", "area", "spot"]
    location: Vec3
    rotation: Vec3 = (0.0, 0.0, 0.0)
    energy: float = 3.0
    color: Color = (1.0, 1.0, 1.0)
    size: float = 0.5


@dataclass(frozen=True)
class Camera:
    """A pinhole camera looking from ``location`` at ``look_at`` (with optional roll)."""

    location: Vec3
    look_at: Vec3
    focal_mm: float = 35.0
    sensor_mm: float = 36.0
    roll: float = 0.0
    fstop: float = 0.0
    """0: no depth of field; otherwise the aperture f-number, focused at ``look_at``."""


@dataclass(frozen=True)
class World:
    color: Color = (0.05, 0.05, 0.06)
    strength: float = 1.0
    fog_density: float = 0.0
    fog_color: Color = (0.8, 0.8, 0.8)
    environment: Environment | None = None
    """An HDRI replacing the flat ``color`` as light (and backdrop when visible)."""


@dataclass(frozen=True)
class Settling:
    """How the scene's objects came to rest (``synth_render.physics``): the run that made their poses."""

    engine: str
    """``pybullet <version>``."""
    seed: int
    steps: int
    """Solver steps run: a seeded count, then more in fixed blocks while a body still moved (state, not clock)."""
    dt: float
    """Seconds per step."""
    objects: tuple[int, ...]
    """Ids of the objects the simulation moved (the others were fixed obstacles)."""
    supports: dict[str, str] = field(default_factory=dict)
    """Object id -> what it rests on at the end (``ground``, ``background``, an object id or ``none``)."""
    max_penetration: float = 0.0
    """Deepest contact between any two bodies after settling, metres (measured by the engine)."""
    max_speed: float = 0.0
    """Fastest body speed at the end, m/s (near 0: at rest)."""


@dataclass(frozen=True)
class Framing:
    """How the camera was aimed at the subjects after placement (``generators.framing``)."""

    target: float
    """Wanted share of the frame covered by the subjects' union box."""
    fill: float
    """Share reached (projected 3D boxes of the subjects, clipped to the frame)."""
    distance: float
    """Camera distance to its look-at point, metres."""


@dataclass(frozen=True)
class Scene:
    """Everything needed to render one sample, and nothing Blender-specific."""

    category: str
    objects: tuple[SceneObject, ...]
    lights: tuple[Light, ...]
    camera: Camera
    world: World = field(default_factory=World)
    background: tuple[Part, ...] = ()
    """Unlabelled geometry (ground, walls): segmentation id 0."""
    params: dict[str, Any] = field(default_factory=dict)
    """The category's variation parameters, as drawn."""
    physics: Settling | None = None
    """The rigid-body settling that placed the objects (None: placed upright by ``placement``)."""
    framing: Framing | None = None
    """How the camera framed the subjects (None: the generator's own camera)."""

    @property
    def complexity(self) -> float:
        """0 (trivial) .. 1 (heavy): drives the adaptive sample count."""
        parts = sum(len(o.parts) for o in self.objects) + len(self.background)
        mats = [p.material for o in self.objects for p in o.parts]
        glossy = sum(1 for m in mats if m.transmission > 0.3 or (m.metallic > 0.5 and m.roughness < 0.3))
        score = min(parts / 40, 1.0) * 0.4 + min(glossy / 4, 1.0) * 0.3
        score += 0.2 if self.world.fog_density > 0 else 0.0
        score += 0.1 if (self.camera.fstop > 0 or any(o.velocity != (0, 0, 0) for o in self.objects)) else 0.0
        return round(min(score, 1.0), 4)


def scene_to_dict(scene: Scene) -> dict[str, Any]:
    """The scene as JSON-ready data (tuples become lists)."""
    d = asdict(scene)
    for key in ("physics", "framing"):  # absent rather than null: samples made without them keep their JSON
        if d[key] is None:
            del d[key]
    d["complexity"] = scene.complexity
    return d
