"""The renderer's world: a flat background colour, optional fog and the HDRI environment.

One world lives for the worker; per sample :func:`apply` sets its colour, strength and fog and
routes its surface through the HDRI nodes of :class:`EnvironmentWorld` (each HDRI image loaded
once per worker and kept, least recently used dropped first). File locations come from
``synth_render.content``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synth_render import content
from synth_render.scene import World

ENV_MEAN = 0.6
"""HDRIs are scaled so that their mean luminance is this at strength 1 (bright and dim images alike)."""


MAX_ENVIRONMENT_BYTES = 512 * 1024**2
"""Float pixels of the HDRIs kept loaded per worker (least recently used dropped first; the eight
1K builtin ones take 64 MB, a 4K HDRI ~134 MB); one is in use per sample."""


@dataclass(frozen=True)
class WorldNodes:
    """The world data-block and its flat background, fog volume and output nodes."""

    world: Any
    background: Any
    volume: Any
    output: Any


def make_world(bpy: Any) -> WorldNodes:
    """A new world with a flat background and an (unlinked) Principled Volume for fog."""
    w = bpy.data.worlds.new("synth-world")
    if w.node_tree is None:  # Blender < 5.0 creates node trees on request only
        w.use_nodes = True
    nt = w.node_tree
    out = next(n for n in nt.nodes if n.type == "OUTPUT_WORLD")
    bg = next((n for n in nt.nodes if n.type == "BACKGROUND"), None) or nt.nodes.new("ShaderNodeBackground")
    nt.links.new(bg.outputs["Background"], out.inputs["Surface"])
    vol = nt.nodes.new("ShaderNodeVolumePrincipled")
    return WorldNodes(w, bg, vol, out)


def apply(nodes: WorldNodes, env: EnvironmentWorld, w: World) -> None:
    """Set the world of a sample: HDRI (or flat colour), background colour and strength, fog."""
    env.apply(w)
    nodes.background.inputs["Color"].default_value = (*w.color, 1.0)
    nodes.background.inputs["Strength"].default_value = w.strength
    links = nodes.world.node_tree.links
    for link in list(nodes.output.inputs["Volume"].links):
        links.remove(link)
    if w.fog_density > 0:
        nodes.volume.inputs["Density"].default_value = w.fog_density
        nodes.volume.inputs["Color"].default_value = (*w.fog_color, 1.0)
        links.new(nodes.volume.outputs["Volume"], nodes.output.inputs["Volume"])


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
