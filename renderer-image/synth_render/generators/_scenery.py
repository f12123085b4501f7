"""What surrounds the subject objects: HDRI world, backdrops (ground, wall, table), clutter, surfaces.

Pure functions of their arguments and the random generator passed in. Environments and texture
sets are chosen from the catalogues in :class:`GenConfig` (empty catalogues fall back to flat
skies and procedural materials, so the scenes stay renderable without any asset).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from synth_render.content import BUILTIN_ENVIRONMENTS
from synth_render.generators import _common as c
from synth_render.generators.base import GenConfig
from synth_render.placement import GROUND, Layout, Surface
from synth_render.scene import Environment, Light, Material, Part, SceneObject, Texture, World

BackdropKind = Literal["ground", "wall", "table"]

OUTDOOR = ("forest", "courtyard", "city", "sunrise", "sunset")
INDOOR = ("studio", "interior")


def environment(config: GenConfig, rng: np.random.Generator, *, prefer: tuple[str, ...] = (),
                visible: bool = True, strength: tuple[float, float] = (0.8, 1.3)) -> Environment | None:
    """One HDRI from the catalogue (preferring ids that contain a word of ``prefer``), or None."""
    if not config.environments:
        return None
    pool = [e for e in config.environments if any(w in e[1].lower() for w in prefer)]
    if not pool:  # no preferred one: any but the builtin night sky, which only the glow effect asks for
        pool = [e for e in config.environments if e != (BUILTIN_ENVIRONMENTS, "night.exr")] or list(config.environments)
    uri, eid = pool[int(rng.integers(len(pool)))]
    return Environment(uri=uri, id=eid, strength=round(float(rng.uniform(*strength)), 3),
                       rotation=round(float(rng.uniform(0, 2 * math.pi)), 4), visible=visible)


def world(config: GenConfig, rng: np.random.Generator, *, prefer: tuple[str, ...] = (), visible: bool = True,
          strength: tuple[float, float] = (0.8, 1.3), hidden_color: tuple[float, float, float] | None = None) -> World:
    """An HDRI world (its backdrop shown or not), or the flat sky when the spec offers no environment."""
    env = environment(config, rng, prefer=prefer, visible=visible, strength=strength)
    if env is None:
        return c.sky(rng)
    color = hidden_color if hidden_color is not None else c.color(rng, sat=(0.0, 0.15), val=(0.5, 0.85))
    return World(color=color, strength=1.0, environment=env)


def lights(rng: np.random.Generator, w: World, *, strength: float = 1.0) -> tuple[Light, ...]:
    """Lamps to go with a world: none under an HDRI (it carries its own sun), the key lights otherwise."""
    if w.environment is not None:
        return ()
    return c.key_lights(rng, strength=strength)


def texture(config: GenConfig, rng: np.random.Generator, *, prefer: tuple[str, ...] = (),
            tile: float = 1.0) -> Texture | None:
    """One PBR set from the catalogue, preferring ids with a word of ``prefer`` (None: no sets)."""
    if not config.textures:
        return None
    pool = [t for t in config.textures if any(w in t[1].lower() for w in prefer)] or list(config.textures)
    uri, tid = pool[int(rng.integers(len(pool)))]
    return Texture(uri=uri, id=tid, tile=tile)


SurfaceKind = Literal["floor", "wall", "table", "grass", "road", "plinth"]


def surface_material(config: GenConfig, rng: np.random.Generator, kind: SurfaceKind) -> Material:
    """A plausible material for a large surface: a PBR set when there is one, else a procedural look."""
    prefer = {"floor": ("wood", "tile", "concrete", "floor", "plank", "stone"),
              "wall": ("plaster", "concrete", "brick", "wall", "paint"),
              "table": ("wood", "marble", "plank"), "plinth": ("concrete", "marble", "stone", "tile"),
              "grass": ("grass", "ground", "soil", "moss"), "road": ("asphalt", "road", "concrete")}[kind]
    tex = texture(config, rng, prefer=prefer, tile=2.0 if kind in ("floor", "grass", "road") else 1.0)
    look = int(rng.integers(3))
    if kind in ("floor", "plinth"):
        if look == 0:
            m = Material(color=c.hsv(0.07, float(rng.uniform(0.4, 0.6)), float(rng.uniform(0.35, 0.6))),
                         color2=c.hsv(0.06, 0.6, float(rng.uniform(0.15, 0.3))), pattern="wood", pattern_scale=2.5,
                         roughness=0.45, bump=0.05)
        elif look == 1:
            m = Material(color=c.color(rng, sat=(0.0, 0.2), val=(0.55, 0.85)), color2=(0.25, 0.25, 0.25),
                         pattern="tiles", pattern_scale=float(rng.choice([2.0, 3.0, 4.0])), roughness=0.3)
        else:
            m = Material(color=c.color(rng, sat=(0.0, 0.1), val=(0.35, 0.6)), color2=c.color(rng, sat=(0.0, 0.1),
                                                                                           val=(0.2, 0.4)),
                         pattern="noise", pattern_scale=8.0, roughness=0.85, bump=0.15)
    elif kind == "wall":
        if look == 0:
            m = Material(color=c.hsv(0.03, float(rng.uniform(0.4, 0.7)), float(rng.uniform(0.3, 0.5))),
                         color2=c.hsv(0.05, 0.5, float(rng.uniform(0.2, 0.4))), pattern="brick", roughness=0.85)
        else:
            m = Material(color=c.color(rng, sat=(0.05, 0.3), val=(0.6, 0.9)), color2=(0.8, 0.8, 0.8),
                         pattern="noise", pattern_scale=20.0, roughness=0.9, bump=0.05)
    elif kind == "table":
        m = Material(color=c.hsv(float(rng.uniform(0.05, 0.09)), float(rng.uniform(0.4, 0.7)),
                                 float(rng.uniform(0.25, 0.6))),
                     color2=c.hsv(0.06, 0.6, float(rng.uniform(0.1, 0.25))), pattern="wood", pattern_scale=4.0,
                     roughness=0.35, bump=0.03)
    elif kind == "grass":
        m = Material(color=c.hsv(float(rng.uniform(0.22, 0.3)), float(rng.uniform(0.6, 0.8)),
                                 float(rng.uniform(0.15, 0.3))),
                     color2=c.hsv(float(rng.uniform(0.1, 0.15)), 0.6, float(rng.uniform(0.1, 0.2))), pattern="noise",
                     pattern_scale=3.0, roughness=0.95, bump=0.5)
    else:
        m = Material(color=(0.07, 0.07, 0.075), color2=(0.13, 0.13, 0.13), pattern="noise", pattern_scale=30.0,
                     roughness=0.8, bump=0.2)
    return replace(m, texture=tex) if tex is not None else m


@dataclass
class Backdrop:
    """The unlabelled geometry, the layout to place objects in, and the surface subjects stand on."""

    kind: BackdropKind
    parts: tuple[Part, ...]
    layout: Layout
    top: Surface
    """Where the subject objects go (the ground, or the table top)."""
    center: tuple[float, float, float]
    """Centre of the top surface: what the camera looks at."""


def backdrop(config: GenConfig, rng: np.random.Generator, kind: BackdropKind, *, extent: float, facing: float,
             floor: SurfaceKind = "floor", ground_size: float = 60.0) -> Backdrop:
    """A backdrop for subjects spread over a disc of radius ``extent``, seen from azimuth ``facing``.

    ``wall``: a back wall (and a side wall) behind the disc, opposite the camera. ``table``: a
    table whose top holds the disc, on a floor.
    """
    ground = Part("plane", surface_material(config, rng, floor), scale=(ground_size, ground_size, 1.0))
    layout = Layout()
    parts = [ground]
    top = GROUND
    center = (0.0, 0.0, 0.0)
    if kind == "wall":
        wall_m = surface_material(config, rng, "wall")
        height = max(3.0, 2.5 * extent)
        dist = extent + 0.6
        back = facing + math.pi  # the wall stands on the far side, its face towards the camera
        for k, (off, width) in enumerate(((0.0, 8 * extent + 4), (math.pi / 2 * float(rng.choice([-1, 1])), 8 * extent + 4))):
            if k == 1 and rng.random() < 0.5:
                break
            a = back + off
            loc = (dist * math.cos(a), dist * math.sin(a), height / 2)
            part = Part("slab", wall_m, location=c.r3(loc), rotation=(0.0, 0.0, round(a, 4)),
                        scale=(0.2, round(width, 3), round(height, 3)))
            parts.append(part)
            # The wall's near face is at dist - 0.1 along its direction: objects stay on this side of it.
            layout.walls.append((round(math.cos(a), 6), round(math.sin(a), 6), dist - 0.1))
    elif kind == "table":
        half_x, half_y = extent + 0.25, extent + 0.25
        height = round(max(0.75, 0.9 * extent), 3)
        thick = round(max(0.05, 0.04 * extent), 3)
        top_m = surface_material(config, rng, "table")
        leg_m = replace(top_m, texture=None) if rng.random() < 0.5 else Material(
            color=(0.05, 0.05, 0.05), roughness=0.3, metallic=1.0)
        # The table stays axis-aligned: its top is the rectangle the layout holds objects on.
        tabletop = Part("slab", top_m, location=(0.0, 0.0, round(height - thick / 2, 4)),
                        scale=(round(2 * half_x, 3), round(2 * half_y, 3), thick))
        parts.append(tabletop)
        leg = round(max(0.05, 0.05 * extent), 3)
        for sx in (-1, 1):
            for sy in (-1, 1):
                parts.append(Part("cylinder", leg_m, location=c.r3((sx * (half_x - 2 * leg), sy * (half_y - 2 * leg),
                                                                    (height - thick) / 2)),
                                  scale=(leg, leg, round(height - thick, 3))))
        layout.obstacles.append((np.array([-half_x, -half_y, 0.0]), np.array([half_x, half_y, height])))
        top = Surface(height, -half_x, -half_y, half_x, half_y)
        layout.surfaces.append(top)
        center = (0.0, 0.0, height)
    return Backdrop(kind=kind, parts=tuple(parts), layout=layout, top=top, center=center)


# --------------------------------------------------------------------------- clutter

CLUTTER = ("mug", "book", "box", "ball", "bottle", "can")


def clutter_object(rng: np.random.Generator, oid: int, kind: str, size: float) -> SceneObject:
    """A small everyday object (a distractor), about ``size`` metres across."""
    rot = (0.0, 0.0, round(float(rng.uniform(0, 2 * math.pi)), 4))
    parts: tuple[Part, ...]
    if kind == "mug":
        body = c.material(rng, pattern="plain", metallic=0.0, roughness=0.25)
        parts = (Part("cup", body, location=(0.0, 0.0, 0.5), scale=(1.0, 1.0, 1.0)),
                 Part("torus", body, location=(0.55, 0.0, 0.5), rotation=(math.pi / 2, 0.0, 0.0),
                      scale=(0.55, 0.55, 0.8)))
        s = size * 0.6
    elif kind == "book":
        cover = c.material(rng, pattern="plain", metallic=0.0, roughness=0.6)
        pages = Material(color=(0.9, 0.88, 0.8), roughness=0.9)
        parts = (Part("slab", cover, location=(0.0, 0.0, 0.1), scale=(1.0, 0.7, 0.2)),
                 Part("cube", pages, location=(0.02, 0.0, 0.1), scale=(0.97, 0.66, 0.16)))
        s = size
    elif kind == "box":
        card = Material(color=c.hsv(0.09, float(rng.uniform(0.3, 0.5)), float(rng.uniform(0.5, 0.75))), roughness=0.8)
        parts = (Part("rounded_cube", card, location=(0.0, 0.0, 0.35), scale=(1.0, 0.8, 0.7)),)
        s = size
    elif kind == "ball":
        parts = (Part("sphere", c.material(rng, metallic=0.0, roughness=0.4), location=(0.0, 0.0, 0.5)),)
        s = size * 0.7
    elif kind == "bottle":
        glass = Material(color=c.hsv(float(rng.choice([0.3, 0.08, 0.55])), 0.5, 0.6), roughness=0.05,
                         transmission=1.0, ior=1.5)
        parts = (Part("bottle", glass, location=(0.0, 0.0, 0.5), scale=(0.32, 0.32, 1.0)),)
        s = size * 1.1
    else:
        parts = (Part("cylinder", Material(color=c.color(rng), roughness=0.3, metallic=1.0),
                      location=(0.0, 0.0, 0.5), scale=(0.55, 0.55, 1.0)),)
        s = size * 0.55
    return SceneObject(id=oid, cls=kind, parts=parts, rotation=rot, scale=c.r3((s, s, s)), distractor=True)


def add_clutter(rng: np.random.Generator, layout: Layout, objects: list[SceneObject], *, share: float,
                size: float, radius: float, on: Surface | None = None,
                center: tuple[float, float] = (0.0, 0.0)) -> list[SceneObject]:
    """Append about ``share`` x subjects distractors (at least one when share > 0), placed without overlap."""
    if share <= 0 or not objects:
        return objects
    count = max(1, round(share * len(objects) + float(rng.uniform(-0.5, 0.5))))
    next_id = max(o.id for o in objects) + 1
    out = list(objects)
    for _ in range(count):
        if next_id > 255:
            break
        kind = CLUTTER[int(rng.integers(len(CLUTTER)))]
        obj = clutter_object(rng, next_id, kind, size * float(rng.uniform(0.7, 1.3)))
        placed = layout.scatter(obj, rng, center=center, radius=radius, on=on, tries=25)
        if placed is not None:
            out.append(placed)
            next_id += 1
    return out


def place_subjects(layout: Layout, rng: np.random.Generator, objects: list[SceneObject], *, radius: float,
                   on: Surface | None = None, center: tuple[float, float] = (0.0, 0.0),
                   stackable: bool = False) -> list[SceneObject]:
    """Each object dropped at a free spot of the disc (ids renumbered 1..n); objects that do not fit are left out.

    The first object always lands (at the disc's centre if no random spot is free), so a scene is never empty.
    """
    out: list[SceneObject] = []
    for obj in objects:
        placed = layout.scatter(obj, rng, center=center, radius=radius, on=on, stackable=stackable)
        if placed is None and not out:
            placed = layout.drop(obj, center[0], center[1], on=on, stackable=stackable) or layout.drop(
                obj, center[0], center[1], stackable=stackable)
        if placed is not None:
            out.append(replace(placed, id=len(out) + 1))
    if not out and objects:  # nothing fits anywhere (a huge object): stand the first one on the ground
        out.append(replace(objects[0], id=1))
    return out
