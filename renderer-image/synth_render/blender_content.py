"""Blender-side content: mesh recipes, the HDRI world and PBR texture materials.

``blender.py`` stays the render driver; this module builds what it shares across samples:
the unit meshes of every shape in ``scene.SHAPE_BOUNDS`` (bevelled, lathed, extruded,
displaced with ``bmesh``, once per worker), the world's environment nodes (each HDRI image
loaded once per worker and kept) and image-texture node setups for PBR sets (each image
loaded once per worker). File locations come from ``synth_render.content``; nothing here
decides what a scene contains.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np

from synth_render import content
from synth_render.scene import SHAPE_BOUNDS, Material, World

_CONTACT_GAP = {"dome": 0.01}
"""Unit-frame gap between a shape's mesh and the bottom of its bounds."""

_SMOOTH = {"sphere", "cylinder", "cone", "torus", "capsule", "cup", "bottle", "rock_a", "rock_b", "rock_c", "blob",
           "rounded_cube", "car_body", "car_cabin", "tyre", "rim", "dome", "slab"}
"""Shapes shaded smooth (sharp edges above ~40 degrees stay sharp)."""


# --------------------------------------------------------------------------- meshes


def build_shape(bpy: Any, name: str) -> Any:
    """The unit mesh of a shape, fitted exactly to its ``SHAPE_BOUNDS``, with one material slot."""
    import bmesh

    if name not in SHAPE_BOUNDS:
        raise ValueError(f"unknown shape {name!r}")
    mesh = bpy.data.meshes.new(f"synth-{name}")
    bm = bmesh.new()
    _RECIPES[name](bm)
    lo, hi = SHAPE_BOUNDS[name]
    # Liquid domes float a hair above their bounds' floor: a refracting face coplanar with the
    # table or floor they rest on renders black.
    _fit(bm, (lo[0], lo[1], lo[2] + _CONTACT_GAP.get(name, 0.0)), hi)
    bm.normal_update()
    bm.to_mesh(mesh)
    bm.free()
    if name in _SMOOTH:
        mesh.shade_smooth()
        mesh.set_sharp_from_angle(angle=math.radians(40 if name not in ("rock_a", "rock_b", "rock_c") else 70))
    mesh.materials.append(None)
    return mesh


def _fit(bm: Any, lo: tuple[float, float, float], hi: tuple[float, float, float]) -> None:
    """Scale and move the vertices so that their bounds are exactly ``lo``..``hi`` (flat axes stay flat)."""
    co = np.array([v.co[:] for v in bm.verts])
    cmin, cmax = co.min(axis=0), co.max(axis=0)
    span = np.where(cmax - cmin > 1e-9, cmax - cmin, 1.0)
    tlo, thi = np.asarray(lo), np.asarray(hi)
    out = tlo + (co - cmin) / span * (thi - tlo)
    for v, p in zip(bm.verts, out, strict=True):
        v.co = p.tolist()


def _cube(bm: Any) -> None:
    import bmesh

    bmesh.ops.create_cube(bm, size=1.0)


def _bevelled_cube(offset: float, segments: int) -> Any:
    def make(bm: Any) -> None:
        import bmesh

        bmesh.ops.create_cube(bm, size=1.0)
        bmesh.ops.bevel(bm, geom=list(bm.edges) + list(bm.verts), offset=offset, segments=segments,
                        affect="EDGES", profile=0.5)
    return make


def _uvsphere(bm: Any) -> None:
    import bmesh

    bmesh.ops.create_uvsphere(bm, u_segments=32, v_segments=16, radius=0.5)


def _ico(bm: Any) -> None:
    import bmesh

    bmesh.ops.create_icosphere(bm, subdivisions=1, radius=0.5)


def _cone(r1: float, r2: float) -> Any:
    def make(bm: Any) -> None:
        import bmesh

        bmesh.ops.create_cone(bm, cap_ends=True, segments=32, radius1=r1, radius2=r2, depth=1.0)
    return make


def _plane(bm: Any) -> None:
    import bmesh

    bmesh.ops.create_grid(bm, x_segments=1, y_segments=1, size=0.5)


def _torus(bm: Any, *, major: float = 0.35, minor: float = 0.15, segments: int = 32, rings: int = 12) -> None:
    verts = []
    for i in range(segments):
        a = 2 * math.pi * i / segments
        for j in range(rings):
            b = 2 * math.pi * j / rings
            r = major + minor * math.cos(b)
            verts.append(bm.verts.new((r * math.cos(a), r * math.sin(a), minor * math.sin(b))))
    for i in range(segments):
        for j in range(rings):
            i2, j2 = (i + 1) % segments, (j + 1) % rings
            bm.faces.new((verts[i * rings + j], verts[i2 * rings + j], verts[i2 * rings + j2], verts[i * rings + j2]))


def _lathe(profile: list[tuple[float, float]], *, segments: int = 32, closed: bool = False) -> Any:
    """A surface of revolution about +Z from (radius, z) points; points on the axis close the ends.

    ``closed``: the profile is a loop (last point joins the first), e.g. a tyre's cross-section.
    """
    def make(bm: Any) -> None:
        rings: list[list[Any]] = []
        for r, z in profile:
            if r <= 1e-9:
                rings.append([bm.verts.new((0.0, 0.0, z))])
            else:
                rings.append([bm.verts.new((r * math.cos(2 * math.pi * i / segments),
                                            r * math.sin(2 * math.pi * i / segments), z)) for i in range(segments)])
        pairs = list(itertools.pairwise(rings)) + ([(rings[-1], rings[0])] if closed else [])
        for a, b in pairs:
            for i in range(segments):
                i2 = (i + 1) % segments
                if len(a) == 1 and len(b) == 1:
                    continue
                if len(a) == 1:
                    bm.faces.new((a[0], b[i2], b[i]))
                elif len(b) == 1:
                    bm.faces.new((a[i], a[i2], b[0]))
                else:
                    bm.faces.new((a[i], a[i2], b[i2], b[i]))
        import bmesh

        bmesh.ops.recalc_face_normals(bm, faces=list(bm.faces))
    return make


def _capsule_profile() -> list[tuple[float, float]]:
    """A cylinder with elliptic caps (caps 0.2 tall in the unit frame, so scaled limbs look round)."""
    pts = [(0.0, -0.5)]
    for k in range(1, 6):
        a = k / 6 * math.pi / 2
        pts.append((0.5 * math.sin(a), -0.3 - 0.2 * math.cos(a)))
    pts += [(0.5, -0.3), (0.5, 0.3)]
    for k in range(1, 6):
        a = k / 6 * math.pi / 2
        pts.append((0.5 * math.cos(a), 0.3 + 0.2 * math.sin(a)))
    return [*pts, (0.0, 0.5)]


def _dome_profile() -> list[tuple[float, float]]:
    return [(0.0, 0.0), *[(0.5 * math.cos(k / 8 * math.pi / 2), 0.5 * math.sin(k / 8 * math.pi / 2))
                          for k in range(0, 8)], (0.0, 0.5)]


def _prism(points: list[tuple[float, float]], *, bevel: float) -> Any:
    """A side profile (x, z) extruded along y and bevelled: car bodies and cabins."""
    def make(bm: Any) -> None:
        import bmesh

        front = [bm.verts.new((x, -0.5, z)) for x, z in points]
        back = [bm.verts.new((x, 0.5, z)) for x, z in points]
        n = len(points)
        bm.faces.new(front)
        bm.faces.new(list(reversed(back)))
        for i in range(n):
            j = (i + 1) % n
            bm.faces.new((front[i], back[i], back[j], front[j]))
        bmesh.ops.recalc_face_normals(bm, faces=list(bm.faces))
        bmesh.ops.bevel(bm, geom=list(bm.edges) + list(bm.verts), offset=bevel, segments=3, affect="EDGES",
                        profile=0.5, clamp_overlap=True)
    return make


def _displaced_ico(seed: int, *, amount: float, subdivisions: int, flat_bottom: float) -> Any:
    """An icosphere pushed in and out by a few seeded waves (deterministic: a fixed seed per shape)."""
    def make(bm: Any) -> None:
        import bmesh

        bmesh.ops.create_icosphere(bm, subdivisions=subdivisions, radius=0.5)
        rng = np.random.default_rng(seed)
        dirs = rng.normal(size=(6, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        freq = rng.uniform(1.5, 5.0, 6)
        phase = rng.uniform(0, 2 * math.pi, 6)
        for v in bm.verts:
            p = np.array(v.co[:])
            d = float(np.sum(np.sin(freq * (dirs @ p) * 2 * math.pi + phase) / freq)) * amount
            q = p * (1.0 + d)
            q[2] = max(q[2], -flat_bottom)
            v.co = q.tolist()
    return make


_RECIPES: dict[str, Any] = {
    "cube": _cube,
    "sphere": _uvsphere,
    "ico": _ico,
    "cylinder": _cone(0.5, 0.5),
    "cone": _cone(0.5, 0.0),
    "plane": _plane,
    "torus": _torus,
    "rounded_cube": _bevelled_cube(0.1, 3),
    "slab": _bevelled_cube(0.02, 2),
    "capsule": _lathe(_capsule_profile()),
    "cup": _lathe([(0.0, -0.5), (0.47, -0.5), (0.5, -0.45), (0.5, 0.5), (0.45, 0.5), (0.45, -0.4), (0.0, -0.4)],
                  segments=40),
    "bottle": _lathe([(0.0, -0.5), (0.47, -0.5), (0.5, -0.45), (0.5, 0.05), (0.42, 0.2), (0.24, 0.3), (0.19, 0.36),
                      (0.19, 0.46), (0.22, 0.48), (0.22, 0.5), (0.0, 0.5)], segments=40),
    "dome": _lathe(_dome_profile()),
    "tyre": _lathe([(0.32, -0.2), (0.45, -0.2), (0.49, -0.16), (0.5, -0.08), (0.5, 0.08), (0.49, 0.16),
                    (0.45, 0.2), (0.32, 0.2)], closed=True),
    "rim": _lathe([(0.0, 0.5), (0.12, 0.5), (0.2, 0.3), (0.5, 0.3), (0.5, -0.5), (0.44, -0.5), (0.44, 0.15),
                   (0.0, 0.15)], segments=24),
    "rock_a": _displaced_ico(11, amount=0.22, subdivisions=4, flat_bottom=0.3),
    "rock_b": _displaced_ico(23, amount=0.3, subdivisions=4, flat_bottom=0.25),
    "rock_c": _displaced_ico(37, amount=0.18, subdivisions=4, flat_bottom=0.35),
    "blob": _displaced_ico(5, amount=0.35, subdivisions=3, flat_bottom=0.5),
    "car_body": _prism([(-0.5, -0.5), (0.5, -0.5), (0.5, 0.15), (0.44, 0.42), (0.16, 0.5), (-0.42, 0.5),
                        (-0.5, 0.3)], bevel=0.06),
    "car_cabin": _prism([(-0.5, -0.5), (0.5, -0.5), (0.18, 0.5), (-0.32, 0.5)], bevel=0.05),
}


# --------------------------------------------------------------------------- world


ENV_MEAN = 0.6
"""HDRIs are scaled so that their mean luminance is this at strength 1 (bright and dim images alike)."""


MAX_ENVIRONMENT_BYTES = 512 * 1024**2
"""Float pixels of the HDRIs kept loaded per worker (least recently used dropped first; the eight
1K builtin ones take 64 MB, a 4K HDRI ~134 MB); one is in use per sample."""
MAX_TEXTURE_IMAGES = 48
"""Texture images kept loaded per worker; images of the sample being built are never dropped."""


class EnvironmentWorld:
    """HDRI nodes added to the renderer's world; images are loaded once and kept for the worker's life."""

    def __init__(self, bpy: Any, world: Any, flat_background: Any, output: Any) -> None:
        self._bpy, self._world = bpy, world
        # The importance map for sampling the HDRI: the automatic size (1024) evaluates the world
        # shader a million times per render (~2 s of CPU); 256 keeps the noise and costs ~0.05 s.
        world.cycles.sampling_method = "MANUAL"
        world.cycles.sample_map_resolution = 256
        nt = world.node_tree
        self._flat, self._out = flat_background, output
        coord = nt.nodes.new("ShaderNodeTexCoord")
        self._mapping = nt.nodes.new("ShaderNodeMapping")
        self._tex = nt.nodes.new("ShaderNodeTexEnvironment")
        self._env_bg = nt.nodes.new("ShaderNodeBackground")
        self._mix = nt.nodes.new("ShaderNodeMixShader")
        light_path = nt.nodes.new("ShaderNodeLightPath")
        self._hidden = nt.nodes.new("ShaderNodeMath")  # is-camera-ray AND the backdrop is hidden
        self._hidden.operation = "MULTIPLY"
        nt.links.new(coord.outputs["Generated"], self._mapping.inputs["Vector"])
        nt.links.new(self._mapping.outputs["Vector"], self._tex.inputs["Vector"])
        nt.links.new(self._tex.outputs["Color"], self._env_bg.inputs["Color"])
        nt.links.new(light_path.outputs["Is Camera Ray"], self._hidden.inputs[0])
        nt.links.new(self._hidden.outputs["Value"], self._mix.inputs["Fac"])
        nt.links.new(self._env_bg.outputs["Background"], self._mix.inputs[1])
        nt.links.new(self._flat.outputs["Background"], self._mix.inputs[2])
        self._images: dict[Path, Any] = {}
        self._gains: dict[Path, float] = {}
        self._sizes: dict[Path, int] = {}

    @property
    def cached(self) -> int:
        return len(self._images)

    def apply(self, world: World) -> None:
        """Route the world's surface through the HDRI (or the flat colour when there is none)."""
        links = self._world.node_tree.links
        surface = self._out.inputs["Surface"]
        for link in list(surface.links):
            links.remove(link)
        env = world.environment
        if env is None:
            links.new(self._flat.outputs["Background"], surface)
            return
        image, gain = self._image(content.environment_path(env.uri, env.id))
        self._tex.image = image
        self._mapping.inputs["Rotation"].default_value = (0.0, 0.0, env.rotation)
        self._env_bg.inputs["Strength"].default_value = env.strength * gain
        self._hidden.inputs[1].default_value = 0.0 if env.visible else 1.0
        links.new(self._mix.outputs["Shader"], surface)

    def _bytes(self) -> int:
        return sum(self._sizes.values())

    def _image(self, path: Path) -> tuple[Any, float]:
        """The loaded image and its exposure gain (strength 1 = mean radiance ``ENV_MEAN``)."""
        if path in self._images:
            self._images[path] = self._images.pop(path)  # most recently used last
        else:
            img = self._bpy.data.images.load(str(path), check_existing=True)
            img.colorspace_settings.name = "Linear Rec.709"
            px = np.empty(len(img.pixels), dtype=np.float32)
            img.pixels.foreach_get(px)
            rgba = px.reshape(-1, 4)
            mean = float(np.mean(rgba[:, :3] @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)))
            self._images[path] = img
            self._gains[path] = float(np.clip(ENV_MEAN / max(mean, 1e-6), 0.25, 4.0))
            self._sizes[path] = px.nbytes  # read once: asking Blender for an image's size costs ~8 ms
        while len(self._images) > 1 and self._bytes() > MAX_ENVIRONMENT_BYTES:  # drop the least recently used
            old = next(iter(self._images))
            self._bpy.data.images.remove(self._images.pop(old))
            self._gains.pop(old, None)
            self._sizes.pop(old, None)
        return self._images[path], self._gains[path]


# --------------------------------------------------------------------------- textures


class TextureSets:
    """Image-texture node setups for PBR sets; every image is loaded once per worker."""

    def __init__(self, bpy: Any) -> None:
        self._bpy = bpy
        self._images: dict[Path, Any] = {}
        self._in_use: set[Path] = set()

    @property
    def cached(self) -> int:
        return len(self._images)

    def apply(self, nt: Any, bsdf: Any, m: Material, scale: tuple[float, float, float]) -> bool:
        """Wire the set's maps into ``bsdf``; False (procedural fallback) when the set has no colour map."""
        assert m.texture is not None
        maps = content.texture_maps(m.texture.uri, m.texture.id)
        if "color" not in maps:
            return False
        coord = nt.nodes.new("ShaderNodeTexCoord")
        mapping = nt.nodes.new("ShaderNodeMapping")
        mapping.inputs["Scale"].default_value = tuple(s / max(m.texture.tile, 1e-3) for s in scale)
        nt.links.new(coord.outputs["Object"], mapping.inputs["Vector"])

        def image(role: str, colour: bool) -> Any:
            node = nt.nodes.new("ShaderNodeTexImage")
            node.image = self._image(maps[role], colour)
            node.projection = "BOX"
            node.projection_blend = 0.25
            nt.links.new(mapping.outputs["Vector"], node.inputs["Vector"])
            return node

        nt.links.new(image("color", True).outputs["Color"], bsdf.inputs["Base Color"])
        if "roughness" in maps:
            nt.links.new(image("roughness", False).outputs["Color"], bsdf.inputs["Roughness"])
        if "metallic" in maps:
            nt.links.new(image("metallic", False).outputs["Color"], bsdf.inputs["Metallic"])
        for role in ("normal", "normal_dx"):
            if role in maps:
                nmap = nt.nodes.new("ShaderNodeNormalMap")
                src = image(role, False).outputs["Color"]
                if role == "normal_dx":  # DirectX maps point green down: flip it for Blender's OpenGL convention
                    sep = nt.nodes.new("ShaderNodeSeparateColor")
                    inv = nt.nodes.new("ShaderNodeMath")
                    inv.operation = "SUBTRACT"
                    inv.inputs[0].default_value = 1.0
                    comb = nt.nodes.new("ShaderNodeCombineColor")
                    nt.links.new(src, sep.inputs["Color"])
                    nt.links.new(sep.outputs[1], inv.inputs[1])
                    nt.links.new(sep.outputs[0], comb.inputs[0])
                    nt.links.new(inv.outputs["Value"], comb.inputs[1])
                    nt.links.new(sep.outputs[2], comb.inputs[2])
                    src = comb.outputs["Color"]
                nt.links.new(src, nmap.inputs["Color"])
                nt.links.new(nmap.outputs["Normal"], bsdf.inputs["Normal"])
                break
        return True

    def begin_sample(self) -> None:
        """A new sample starts: images of the previous one may be dropped again."""
        self._in_use.clear()

    def _image(self, path: Path, colour: bool) -> Any:
        self._in_use.add(path)
        if path in self._images:
            self._images[path] = self._images.pop(path)  # most recently used last
        else:
            img = self._bpy.data.images.load(str(path), check_existing=True)
            img.colorspace_settings.name = "sRGB" if colour else "Non-Color"
            self._images[path] = img
        for old in [p for p in self._images if p not in self._in_use]:  # least recently used first
            if len(self._images) <= MAX_TEXTURE_IMAGES:
                break
            self._bpy.data.images.remove(self._images.pop(old))
        return self._images[path]


# --------------------------------------------------------------------------- metric patterns

METRIC_PATTERNS = ("brick", "windows", "wood", "tiles")
"""Patterns laid out in metres on the part (its object coordinates times its scale)."""


def metric_pattern(nt: Any, bsdf: Any, m: Material, scale: tuple[float, float, float]) -> None:
    """Bricks, a façade of windows or wood grain, sized in metres whatever the part's scale."""
    coord = nt.nodes.new("ShaderNodeTexCoord")
    mapping = nt.nodes.new("ShaderNodeMapping")
    mapping.inputs["Scale"].default_value = scale
    nt.links.new(coord.outputs["Object"], mapping.inputs["Vector"])
    vec = mapping.outputs["Vector"]
    if m.pattern == "tiles":
        tiles = nt.nodes.new("ShaderNodeTexBrick")
        tiles.offset = 0.0
        tiles.inputs["Scale"].default_value = 1.0
        tiles.inputs["Brick Width"].default_value = 1.0
        tiles.inputs["Row Height"].default_value = 1.0
        tiles.inputs["Mortar Size"].default_value = 0.03
        tiles.inputs["Color1"].default_value = (*m.color, 1.0)
        tiles.inputs["Color2"].default_value = (*(0.9 * c for c in m.color), 1.0)
        tiles.inputs["Mortar"].default_value = (*m.color2, 1.0)
        mapping.inputs["Scale"].default_value = tuple(s * m.pattern_scale for s in scale)
        nt.links.new(vec, tiles.inputs["Vector"])
        nt.links.new(tiles.outputs["Color"], bsdf.inputs["Base Color"])
        bump = nt.nodes.new("ShaderNodeBump")
        bump.inputs["Strength"].default_value = 0.3
        nt.links.new(tiles.outputs["Fac"], bump.inputs["Height"])
        nt.links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
        return
    if m.pattern in ("brick", "windows"):
        # Walls of a box: u runs around the walls (x + y), v up them (z).
        sep = nt.nodes.new("ShaderNodeSeparateXYZ")
        add = nt.nodes.new("ShaderNodeMath")
        comb = nt.nodes.new("ShaderNodeCombineXYZ")
        nt.links.new(vec, sep.inputs["Vector"])
        nt.links.new(sep.outputs["X"], add.inputs[0])
        nt.links.new(sep.outputs["Y"], add.inputs[1])
        nt.links.new(add.outputs["Value"], comb.inputs["X"])
        nt.links.new(sep.outputs["Z"], comb.inputs["Y"])
        brick = nt.nodes.new("ShaderNodeTexBrick")
        nt.links.new(comb.outputs["Vector"], brick.inputs["Vector"])
        mix_rough = nt.nodes.new("ShaderNodeMix")
        if m.pattern == "brick":
            brick.inputs["Brick Width"].default_value = 0.5
            brick.inputs["Row Height"].default_value = 0.25
            brick.inputs["Mortar Size"].default_value = 0.02
            brick.inputs["Color1"].default_value = (*m.color, 1.0)
            brick.inputs["Color2"].default_value = (*m.color2, 1.0)
            brick.inputs["Mortar"].default_value = (0.6, 0.6, 0.58, 1.0)
            brick.inputs["Scale"].default_value = 1.0
            mapping.inputs["Scale"].default_value = tuple(s * 4.0 for s in scale)
            nt.links.new(brick.outputs["Color"], bsdf.inputs["Base Color"])
            bsdf.inputs["Roughness"].default_value = 0.85
            bump = nt.nodes.new("ShaderNodeBump")
            bump.inputs["Strength"].default_value = 0.4
            nt.links.new(brick.outputs["Fac"], bump.inputs["Height"])
            nt.links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
            return
        # Windows: one "brick" per 2.4 m x 3 m bay, the mortar is the wall, the bricks are glass.
        brick.offset = 0.0
        brick.inputs["Scale"].default_value = 1.0
        brick.inputs["Brick Width"].default_value = 1.0
        brick.inputs["Row Height"].default_value = 1.0
        brick.inputs["Mortar Size"].default_value = 0.24
        brick.inputs["Mortar Smooth"].default_value = 0.0
        mapping.inputs["Scale"].default_value = (scale[0] / 2.4, scale[1] / 2.4, scale[2] / 3.0)
        brick.inputs["Color1"].default_value = (*m.color2, 1.0)
        brick.inputs["Color2"].default_value = (*tuple(0.8 * c for c in m.color2), 1.0)
        brick.inputs["Mortar"].default_value = (*m.color, 1.0)
        nt.links.new(brick.outputs["Color"], bsdf.inputs["Base Color"])
        mix_rough.data_type = "FLOAT"
        mix_rough.inputs[2].default_value = 0.05  # glass
        mix_rough.inputs[3].default_value = max(m.roughness, 0.6)  # wall
        nt.links.new(brick.outputs["Fac"], mix_rough.inputs[0])
        nt.links.new(mix_rough.outputs[0], bsdf.inputs["Roughness"])
        return
    # Wood: planks (a brick pattern of long boards with thin seams) with grain from a distorted wave.
    planks = nt.nodes.new("ShaderNodeTexBrick")
    planks.offset = 0.5
    planks.inputs["Scale"].default_value = 1.0
    planks.inputs["Brick Width"].default_value = 1.2
    planks.inputs["Row Height"].default_value = 0.16
    planks.inputs["Mortar Size"].default_value = 0.004
    planks.inputs["Bias"].default_value = 0.0
    planks.inputs["Color1"].default_value = (*m.color, 1.0)
    planks.inputs["Color2"].default_value = (*(0.7 * c for c in m.color), 1.0)
    planks.inputs["Mortar"].default_value = (*(0.4 * c for c in m.color2), 1.0)
    nt.links.new(vec, planks.inputs["Vector"])
    wave = nt.nodes.new("ShaderNodeTexWave")
    wave.wave_type = "BANDS"
    wave.bands_direction = "X"
    wave.inputs["Scale"].default_value = m.pattern_scale
    wave.inputs["Distortion"].default_value = 8.0
    wave.inputs["Detail"].default_value = 4.0
    wave.inputs["Detail Scale"].default_value = 2.0
    stretch = nt.nodes.new("ShaderNodeMapping")
    stretch.inputs["Scale"].default_value = (0.3, 6.0, 6.0)  # grain runs along the boards (x)
    nt.links.new(vec, stretch.inputs["Vector"])
    nt.links.new(stretch.outputs["Vector"], wave.inputs["Vector"])
    grain = nt.nodes.new("ShaderNodeMix")
    grain.data_type = "RGBA"
    grain.blend_type = "MULTIPLY"
    grain.inputs[0].default_value = 0.45
    nt.links.new(planks.outputs["Color"], grain.inputs[6])
    nt.links.new(wave.outputs["Color"], grain.inputs[7])
    tint = nt.nodes.new("ShaderNodeMix")
    tint.data_type = "RGBA"
    tint.inputs[0].default_value = 0.25
    nt.links.new(grain.outputs[2], tint.inputs[6])
    tint.inputs[7].default_value = (*m.color2, 1.0)
    nt.links.new(tint.outputs[2], bsdf.inputs["Base Color"])
    bump = nt.nodes.new("ShaderNodeBump")
    bump.inputs["Strength"].default_value = 0.3
    nt.links.new(planks.outputs["Fac"], bump.inputs["Height"])
    nt.links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
