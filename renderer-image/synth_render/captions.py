"""Deterministic natural-language captions from a sample's metadata, and the caption check.

Pure functions of the sample's JSON (``scene``, ``objects``, ``camera``, ``seed``): a dataset
can be re-captioned without rendering, and the same sample always gets the same caption.
The sample's seed picks the template and the synonyms, so captions vary across a dataset.

What a caption says: every visible object (grouped: "two small red cubes"), with colour,
material and size words; up to two spatial relations between the most visible objects
(left of / right of / in front of / behind / on top of, from the camera's point of view);
the lighting; the camera (lens, viewpoint, depth of field, motion blur); the environment
(background colour, fog, HDRI).

``caption_check`` is the quality gate's test: every visible object's class noun appears and
no noun of a class that is not visible does. ``load_captioner`` resolves ``render.captioner``
(``builtin``, ``none``, an entry point in group ``parallel_synth.captioners`` (synth_contract.plugins) or
``module:function``); a user captioner is called as ``fn(meta, rgb) -> str`` and must not
download anything.
"""

from __future__ import annotations

import colorsys
import importlib
import itertools
import math
import re
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from synth_contract import plugins

Captioner = Callable[[dict[str, Any], Any], str]

NOUNS: dict[str, tuple[str, str]] = {
    "cube": ("cube", "cubes"), "sphere": ("sphere", "spheres"), "ico": ("icosahedron", "icosahedra"),
    "cylinder": ("cylinder", "cylinders"), "cone": ("cone", "cones"), "torus": ("torus", "tori"),
    "plane": ("panel", "panels"), "person": ("person", "people"), "glass": ("glass", "glasses"),
    "droplet": ("droplet", "droplets"), "puddle": ("puddle", "puddles"), "tree": ("tree", "trees"),
    "rock": ("rock", "rocks"), "building": ("building", "buildings"), "car": ("car", "cars"),
    "van": ("van", "vans"), "truck": ("truck", "trucks"), "rounded_cube": ("rounded block", "rounded blocks"),
    "liquid": ("splash of liquid", "splashes of liquid"), "smoke": ("plume of smoke", "plumes of smoke"),
    "fire": ("fire", "fires"),
}
"""Singular and plural noun of each class; other classes (asset libraries) get a regular plural."""

_NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")


def noun(cls: str) -> tuple[str, str]:
    """(singular, plural) noun of a class name."""
    if cls in NOUNS:
        return NOUNS[cls]
    word = cls.replace("_", " ").replace("-", " ").strip().lower() or "object"
    plural = word + ("es" if word.endswith(("s", "x", "ch", "sh")) else "s")
    return word, plural


# --------------------------------------------------------------------------- words


def colour_word(rgb: Iterable[float]) -> str:
    r, g, b = (min(max(float(x), 0.0), 1.0) for x in rgb)
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    if v < 0.12:
        return "black"
    if s < 0.18:
        return "white" if v > 0.8 else ("grey" if v > 0.35 else "dark grey")
    for top, name in ((0.04, "red"), (0.10, "orange"), (0.18, "yellow"), (0.45, "green"), (0.53, "teal"),
                      (0.70, "blue"), (0.80, "purple"), (0.95, "pink"), (1.01, "red")):
        if h < top:
            return name
    return "red"


_PATTERN_WORDS = {"checker": "checkered", "noise": "mottled", "voronoi": "speckled", "wave": "striped",
                  "magic": "patterned", "brick": "brick-patterned", "windows": "windowed", "wood": "wooden"}


def material_word(mat: dict[str, Any], pick: Callable[[tuple[str, ...]], str]) -> str:
    if float(mat.get("transmission", 0)) > 0.5:
        return pick(("transparent", "clear", "see-through"))
    if float(mat.get("emission", 0)) > 0:
        return pick(("glowing", "luminous"))
    if float(mat.get("metallic", 0)) > 0.5:
        return pick(("metallic", "shiny metal")) if float(mat.get("roughness", 1)) < 0.35 else "brushed metal"
    if mat.get("texture"):
        return "textured"
    word = _PATTERN_WORDS.get(str(mat.get("pattern", "plain")), "")
    if word:
        return word
    rough = float(mat.get("roughness", 0.5))
    if rough < 0.25:
        return pick(("glossy", "shiny", "polished"))
    if rough > 0.7:
        return pick(("matte", "dull"))
    return ""


def _main_part(obj: dict[str, Any]) -> dict[str, Any]:
    parts = obj.get("parts") or [{}]
    return dict(max(parts, key=lambda p: float(np.prod(np.abs(p.get("scale", (1, 1, 1)))))))


def _size(obj: dict[str, Any]) -> float:
    return float(max(abs(float(x)) for x in obj.get("scale", (1, 1, 1))))


# --------------------------------------------------------------------------- caption


def visible_objects(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects a caption must mention: those listed in the sample with pixels, not marked invisible."""
    return [o for o in meta.get("objects", []) if isinstance(o, dict) and o.get("visible", True)
            and int(o.get("pixels", 1)) > 0]


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _camera_xyz(meta: dict[str, Any], sobj: dict[str, Any]) -> np.ndarray:
    e = np.asarray(meta["camera"]["extrinsics"], dtype=np.float64)
    return np.asarray(e[:3, :3] @ np.asarray(sobj.get("location", (0, 0, 0)), dtype=np.float64) + e[:3, 3])


def caption(meta: dict[str, Any], rgb: Any = None) -> str:
    """The built-in caption of a sample (deterministic in its metadata and seed)."""
    rng = np.random.default_rng([int(meta.get("seed", 0)) & 0xFFFFFFFF, 0xCA9])

    def pick(options: tuple[str, ...]) -> str:
        return options[int(rng.integers(len(options)))]

    scene = meta.get("scene", {})
    by_id = {int(o["id"]): o for o in scene.get("objects", [])}
    vis = [o for o in visible_objects(meta) if int(o["id"]) in by_id]
    sizes = [_size(by_id[int(o["id"])]) for o in vis]
    median = float(np.median(sizes)) if sizes else 1.0
    desc: dict[int, tuple[str, str, str, str]] = {}
    for o, size in zip(vis, sizes, strict=True):
        sobj = by_id[int(o["id"])]
        mat = _main_part(sobj).get("material", {})
        size_w = pick(("small", "little")) if size < 0.7 * median else (pick(("large", "big")) if size > 1.4 * median
                                                                           else "")
        cls = str(o.get("class") or sobj.get("cls", "object"))
        desc[int(o["id"])] = (size_w, colour_word(mat.get("color", (0.5, 0.5, 0.5))), material_word(mat, pick), cls)
    groups: dict[tuple[str, str, str, str], int] = {}
    for o in vis:
        d = desc[int(o["id"])]
        groups[d] = groups.get(d, 0) + 1
    phrases = []
    for (size_w, col, mat_w, cls), n in groups.items():
        sing, plur = noun(cls)
        words = [w for w in (size_w, col, mat_w) if w]
        head = ("a" if not words or words[0][0] not in "aeiou" else "an") if n == 1 else (
            _NUMBERS[n] if n < len(_NUMBERS) else str(n))
        phrases.append(" ".join([head, *words, sing if n == 1 else plur]))
    objects = _join(phrases) if phrases else "an empty scene"

    relations = []
    short = [(desc[int(o["id"])][1], desc[int(o["id"])][3]) for o in vis]
    unique = [o for o, d in zip(vis, short, strict=True) if short.count(d) == 1]
    ranked = sorted(unique, key=lambda o: -int(o.get("pixels", 0)))[:3]
    for a, b in itertools.pairwise(ranked):
        sa, sb = by_id[int(a["id"])], by_id[int(b["id"])]
        pa, pb = _camera_xyz(meta, sa), _camera_xyz(meta, sb)
        wa, wb = np.asarray(sa.get("location", (0, 0, 0))), np.asarray(sb.get("location", (0, 0, 0)))
        if math.hypot(*(wa[:2] - wb[:2])) < 0.5 * max(_size(sb), 0.1) and wa[2] > wb[2] + 0.3 * _size(sb):
            rel = "on top of"
        elif abs(pa[0] - pb[0]) >= 0.5 * abs(pa[2] - pb[2]):
            rel = "to the left of" if pa[0] < pb[0] else "to the right of"
        else:
            rel = "in front of" if pa[2] < pb[2] else "behind"
        da, db = desc[int(a["id"])], desc[int(b["id"])]
        relations.append(f"the {da[1]} {noun(da[3])[0]} is {rel} the {db[1]} {noun(db[3])[0]}")

    light = _lighting(scene, pick)
    cam = _camera_words(meta, scene, pick)
    env = _environment(scene, pick)
    t = int(rng.integers(3))
    rel_text = (_join(relations) + ".") if relations else ""
    if t == 0:
        opener = pick(("A photo", "A render", "An image"))
        text = f"{opener} of {objects} {env}, {light}. {_cap(rel_text)} {_cap(cam)}."
    elif t == 1:
        text = f"{_cap(objects)} {env}, {cam}. {_cap(rel_text)} Everything is {light}."
    else:
        text = f"{_cap(cam)}: {objects}. {_cap(rel_text)} The scene is {light}, {env}."
    return re.sub(r"\s+", " ", text.replace(" .", ".")).strip()


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _lighting(scene: dict[str, Any], pick: Callable[[tuple[str, ...]], str]) -> str:
    lights = scene.get("lights", [])
    kinds = {str(light.get("kind")) for light in lights}
    warm = [light for light in lights if colorsys.rgb_to_hsv(*light.get("color", (1, 1, 1)))[1] > 0.15]
    tone = (pick(("warm", "golden")) + " ") if warm else ""
    env = _hdri(scene)
    if env is not None:
        name = _SAFE_HDRI.get(env[0])
        if name:
            return f"under {tone}{name} {pick(('lighting', 'light'))}"
        return f"lit by {'a ' + tone if tone else 'an '}HDRI environment map"
    if "sun" in kinds:
        sun = next(light for light in lights if light.get("kind") == "sun")
        low = abs(float(sun.get("rotation", (0, 0, 0))[0])) > 1.0
        return f"lit by {tone}{'low, raking' if low else 'bright'} sunlight"
    if "spot" in kinds:
        return f"under {tone}{pick(('dramatic spotlights', 'focused spotlights'))}"
    if "area" in kinds:
        return f"under {tone}{pick(('soft studio lighting', 'diffuse soft light'))}"
    if "point" in kinds:
        return f"under {tone}point lights"
    return "in dim ambient light"


def _camera_words(meta: dict[str, Any], scene: dict[str, Any], pick: Callable[[tuple[str, ...]], str]) -> str:
    cam = scene.get("camera", {})
    focal = float(cam.get("focal_mm", meta.get("camera", {}).get("focalMm", 35.0)))
    loc = np.asarray(cam.get("location", (0, -5, 1)), dtype=np.float64)
    tgt = np.asarray(cam.get("look_at", (0, 0, 0)), dtype=np.float64)
    d = tgt - loc
    elev = math.degrees(math.atan2(-d[2], math.hypot(d[0], d[1]) or 1e-9))
    lens = "wide-angle" if focal < 28 else ("telephoto" if focal > 70 else pick(("standard-lens", "normal-lens")))
    view = ("seen from high above" if elev > 55 else "seen from above" if elev > 25
            else "seen at eye level" if elev > -5 else "seen from below")
    words = [f"{lens} shot {view}"]
    if float(cam.get("fstop", 0.0)) > 0:
        words.append("with shallow depth of field")
    if any(any(float(v) for v in o.get("velocity", (0, 0, 0))) for o in scene.get("objects", [])):
        words.append("with motion blur")
    return " ".join(words)


_SAFE_HDRI = {"city": "city", "courtyard": "courtyard", "forest": "forest", "interior": "indoor", "night": "night",
              "studio": "studio", "sunrise": "sunrise", "sunset": "sunset"}
"""Environment maps named in captions (the ones shipped with Blender); others are 'an HDRI environment',
so that a file name can never put a class noun into a caption."""


def _hdri(scene: dict[str, Any]) -> tuple[str, bool] | None:
    """(stem of the environment map, visible) or None without one."""
    env = scene.get("world", {}).get("environment") or scene.get("environment")
    if not isinstance(env, dict):
        return None
    stem = str(env.get("id", "")).rsplit("/", 1)[-1].split(".", 1)[0].lower()
    return stem, bool(env.get("visible", True))


def _environment(scene: dict[str, Any], pick: Callable[[tuple[str, ...]], str]) -> str:
    world = scene.get("world", {})
    env = _hdri(scene)
    if env is not None and env[1]:
        name = _SAFE_HDRI.get(env[0])
        parts = [f"in a {name} setting" if name else "in front of an environment map"]
    else:
        parts = [f"against a {colour_word(world.get('color', (0.05, 0.05, 0.06)))} "
                 f"{pick(('background', 'backdrop'))}"]
    if float(world.get("fog_density", 0.0)) > 0:
        parts.append(pick(("in hazy fog", "in thick mist")))
    return " ".join(parts)


# --------------------------------------------------------------------------- check and hook


def _mentions(text: str, cls: str) -> bool:
    sing, plur = noun(cls)
    return any(re.search(rf"\b{re.escape(w)}\b", text, re.IGNORECASE) for w in {sing, plur})


def caption_check(text: str, *, visible_classes: Iterable[str], vocabulary: Iterable[str]) -> list[str]:
    """Problems of a caption (empty: fine): a visible class not mentioned, or a class of the
    vocabulary that is not visible but mentioned. Pure; the quality gate calls it."""
    vis = {str(c) for c in visible_classes}
    problems = [f"caption does not mention visible {c!r}" for c in sorted(vis) if not _mentions(text, c)]
    problems += [f"caption mentions {c!r}, which is not visible" for c in sorted(set(map(str, vocabulary)) - vis)
                 if _mentions(text, c)]
    return problems


class CaptionerError(RuntimeError):
    """``render.captioner`` cannot be loaded, or it failed on a sample (names the captioner and why)."""


def call_captioner(name: str, fn: Captioner, meta: dict[str, Any], rgb: Any) -> str:
    """``fn(meta, rgb)`` as text; a user captioner's exception becomes :class:`CaptionerError` naming it."""
    try:
        return str(fn(meta, rgb)).strip()
    except Exception as exc:
        raise CaptionerError(f"render.captioner {name!r} failed: {type(exc).__name__}: {str(exc)[:200]} "
                             "(a captioner is called as fn(meta, rgb) -> str)") from exc


def load_captioner(name: str) -> Captioner | None:
    """``render.captioner`` as a function: builtin, none (None), entry point name or module:function."""
    if name == "builtin":
        return caption
    if name == "none":
        return None
    if ":" in name:
        module, attr = name.split(":", 1)
        try:
            fn = importlib.import_module(module)
            for part in attr.split("."):
                fn = getattr(fn, part)
        except (ImportError, AttributeError, ValueError) as exc:
            raise CaptionerError(f"render.captioner {name!r}: cannot be loaded ({type(exc).__name__}: "
                                 f"{str(exc)[:200]}); allowed: builtin, none, an entry point name, "
                                 "module:function") from exc
        if not callable(fn):
            raise CaptionerError(f"render.captioner {name!r}: is not a function")
        return fn  # type: ignore[return-value]
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group=plugins.CAPTIONERS) if ep.name == name]
    if not found:
        raise ValueError(f"render.captioner: no entry point {name!r} in group parallel_synth.captioners "
                         "(allowed: builtin, none, an entry point name, module:function)")
    loaded: Captioner = found[0].load()
    return loaded
