"""Materials of the parts: a Principled BSDF coloured by a procedural pattern or a PBR texture set.

``make_material`` builds one material: a plain colour, two colours mixed by a Blender texture
(noise, checker, voronoi, wave, magic), a pattern laid out in metres on the part (bricks, a
façade of windows, wood planks, tiles: :func:`metric_pattern`) or the maps of a texture set
(:class:`TextureSets`, each image loaded once per worker). Nothing here decides what a scene contains.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synth_render import content
from synth_render.scene import Material, Vec3

_TEXTURES = {"noise": ("ShaderNodeTexNoise", "Fac"), "checker": ("ShaderNodeTexChecker", "Fac"),
             "voronoi": ("ShaderNodeTexVoronoi", "Distance"), "wave": ("ShaderNodeTexWave", "Fac"),
             "magic": ("ShaderNodeTexMagic", "Fac")}

MAX_TEXTURE_IMAGES = 48
"""Texture images kept loaded per worker; images of the sample being built are never dropped."""


def make_material(bpy: Any, m: Material, scale: Vec3, textures: TextureSets) -> Any:
    """A new material for ``m`` on a part of size ``scale`` (metres; used by metric patterns and texture sets)."""
    mat = bpy.data.materials.new("synth-mat")
    if mat.node_tree is None:
        mat.use_nodes = True
    nt = mat.node_tree
    bsdf = next(n for n in nt.nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Roughness"].default_value = m.roughness
    bsdf.inputs["Metallic"].default_value = m.metallic
    bsdf.inputs["IOR"].default_value = m.ior
    bsdf.inputs["Transmission Weight"].default_value = m.transmission
    if m.emission > 0:
        bsdf.inputs["Emission Color"].default_value = (*m.color, 1.0)
        bsdf.inputs["Emission Strength"].default_value = m.emission
        # Glowing surfaces light the scene through bounces only: Cycles 5.0 samples mesh lights
        # with data that differs in the last bit between processes (a re-render would not be exact).
        mat.cycles.emission_sampling = "NONE"
    if m.texture is not None and textures.apply(nt, bsdf, m, scale):
        return mat
    if m.pattern in METRIC_PATTERNS:
        metric_pattern(nt, bsdf, m, scale)
        return mat
    if m.pattern == "plain":
        bsdf.inputs["Base Color"].default_value = (*m.color, 1.0)
        return mat
    kind, socket = _TEXTURES[m.pattern]
    tex = nt.nodes.new(kind)
    tex.inputs["Scale"].default_value = m.pattern_scale
    mix = nt.nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.inputs[6].default_value = (*m.color, 1.0)
    mix.inputs[7].default_value = (*m.color2, 1.0)
    nt.links.new(tex.outputs[socket], mix.inputs[0])
    nt.links.new(mix.outputs[2], bsdf.inputs["Base Color"])
    if m.bump > 0:
        _bump(nt, tex.outputs[socket], bsdf, m.bump)
    return mat


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


Shade = tuple[float, ...]
"""An RGB colour (alpha added where a socket wants RGBA)."""


def _scaled(m: Material, scale: Vec3) -> Vec3:
    """The pattern's texture-space scale on a part of size ``scale`` (metres)."""
    if m.pattern == "tiles":
        return (scale[0] * m.pattern_scale, scale[1] * m.pattern_scale, scale[2] * m.pattern_scale)
    if m.pattern == "brick":
        return (scale[0] * 4.0, scale[1] * 4.0, scale[2] * 4.0)
    if m.pattern == "windows":  # one bay of 2.4 m x 3 m
        return (scale[0] / 2.4, scale[1] / 2.4, scale[2] / 3.0)
    return scale


def _bricks(nt: Any, vector: Any, *, width: float, row: float, mortar: float, colors: tuple[Shade, Shade, Shade],
            offset: float | None = None, more: dict[str, float] | None = None) -> Any:
    """A Brick Texture node at scale 1 fed by ``vector``; ``colors``: brick 1, brick 2, mortar;
    ``offset``: of every other row (None: Blender's 0.5); ``more``: other inputs by name."""
    bricks = nt.nodes.new("ShaderNodeTexBrick")
    if offset is not None:
        bricks.offset = offset
    values: dict[str, Any] = {"Scale": 1.0, "Brick Width": width, "Row Height": row, "Mortar Size": mortar,
                              "Color1": (*colors[0], 1.0), "Color2": (*colors[1], 1.0), "Mortar": (*colors[2], 1.0)}
    for name, value in {**values, **(more or {})}.items():
        bricks.inputs[name].default_value = value
    nt.links.new(vector, bricks.inputs["Vector"])
    return bricks


def _bump(nt: Any, height: Any, bsdf: Any, strength: float) -> None:
    bump = nt.nodes.new("ShaderNodeBump")
    bump.inputs["Strength"].default_value = strength
    nt.links.new(height, bump.inputs["Height"])
    nt.links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])


def _around_walls(nt: Any, vec: Any) -> Any:
    """Walls of a box: u runs around the walls (x + y), v up them (z)."""
    sep = nt.nodes.new("ShaderNodeSeparateXYZ")
    add = nt.nodes.new("ShaderNodeMath")
    comb = nt.nodes.new("ShaderNodeCombineXYZ")
    nt.links.new(vec, sep.inputs["Vector"])
    nt.links.new(sep.outputs["X"], add.inputs[0])
    nt.links.new(sep.outputs["Y"], add.inputs[1])
    nt.links.new(add.outputs["Value"], comb.inputs["X"])
    nt.links.new(sep.outputs["Z"], comb.inputs["Y"])
    return comb.outputs["Vector"]


def metric_pattern(nt: Any, bsdf: Any, m: Material, scale: Vec3) -> None:
    """Bricks, a façade of windows, wood planks or tiles, sized in metres whatever the part's scale."""
    coord = nt.nodes.new("ShaderNodeTexCoord")
    mapping = nt.nodes.new("ShaderNodeMapping")
    mapping.inputs["Scale"].default_value = _scaled(m, scale)
    nt.links.new(coord.outputs["Object"], mapping.inputs["Vector"])
    vec = mapping.outputs["Vector"]
    if m.pattern == "tiles":
        tiles = _bricks(nt, vec, width=1.0, row=1.0, mortar=0.03,
                        colors=(m.color, tuple(0.9 * c for c in m.color), m.color2), offset=0.0)
        nt.links.new(tiles.outputs["Color"], bsdf.inputs["Base Color"])
        _bump(nt, tiles.outputs["Fac"], bsdf, 0.3)
    elif m.pattern == "brick":
        brick = _bricks(nt, _around_walls(nt, vec), width=0.5, row=0.25, mortar=0.02,
                        colors=(m.color, m.color2, (0.6, 0.6, 0.58)))
        nt.links.new(brick.outputs["Color"], bsdf.inputs["Base Color"])
        bsdf.inputs["Roughness"].default_value = 0.85
        _bump(nt, brick.outputs["Fac"], bsdf, 0.4)
    elif m.pattern == "windows":
        # One "brick" per bay: the mortar is the wall, the bricks are glass.
        windows = _bricks(nt, _around_walls(nt, vec), width=1.0, row=1.0, mortar=0.24,
                          colors=(m.color2, tuple(0.8 * c for c in m.color2), m.color), offset=0.0,
                          more={"Mortar Smooth": 0.0})
        nt.links.new(windows.outputs["Color"], bsdf.inputs["Base Color"])
        rough = nt.nodes.new("ShaderNodeMix")
        rough.data_type = "FLOAT"
        rough.inputs[2].default_value = 0.05  # glass
        rough.inputs[3].default_value = max(m.roughness, 0.6)  # wall
        nt.links.new(windows.outputs["Fac"], rough.inputs[0])
        nt.links.new(rough.outputs[0], bsdf.inputs["Roughness"])
    else:
        _wood(nt, bsdf, m, vec)


def _wood(nt: Any, bsdf: Any, m: Material, vec: Any) -> None:
    """Planks (a brick pattern of long boards with thin seams) with grain from a distorted wave."""
    planks = _bricks(nt, vec, width=1.2, row=0.16, mortar=0.004,
                     colors=(m.color, tuple(0.7 * c for c in m.color), tuple(0.4 * c for c in m.color2)), offset=0.5,
                     more={"Bias": 0.0})
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
    _bump(nt, planks.outputs["Fac"], bsdf, 0.3)
