"""Where environments and texture sets are: list a source's entries and find their local files.

A source is a URI from ``spec.assets.environments`` or ``spec.assets.textures``:
``builtin:studiolights`` (the HDRIs inside the bpy wheel, found from bpy's install path
without importing Blender), ``file:///dir``, or ``s3://bucket/prefix`` (fetched through the
asset cache). Listings are sorted and cached per process, so a generator choosing "entry k of
source u" picks the same file on every worker. Texture maps are recognised by the usual
ambientCG / Poly Haven file names (``*_Color``, ``*_diff``, ``*_Roughness``, ``*_NormalGL``...).
"""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlparse

from synth_render.assets.fetch import Unavailable, resolve_uri_dir
from synth_render.assets.runtime import worker_cache

ENVIRONMENT_SUFFIXES = (".exr", ".hdr")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".exr", ".tif", ".tiff")

BUILTIN_ENVIRONMENTS = "builtin:studiolights"

_ROLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("normal_dx", ("normaldx", "nordx")),
    ("normal", ("normalgl", "norgl", "normal", "nor", "nrm")),
    ("color", ("basecolor", "albedo", "diffuse", "diff", "color", "col")),
    ("roughness", ("roughness", "rough", "rgh")),
    ("metallic", ("metallic", "metalness", "metal")),
)
"""Map roles and the name tokens that mark them, separators removed (first match wins: NormalDX beats Normal)."""


class ContentError(ValueError):
    """An environment or texture source that cannot be listed or read (names the URI)."""


def map_role(filename: str) -> str | None:
    """The PBR role of an image file by its name (``wood_Color.png`` -> ``color``), or None."""
    stem, dot, ext = filename.rpartition(".")
    if not dot or "." + ext.lower() not in IMAGE_SUFFIXES:
        return None
    tokens = [t for t in re.split(r"[_\-\s.]+", stem.lower()) if t]
    joined = ["".join(tokens[i:i + 2]) for i in range(len(tokens))]  # "normal", "gl" -> "normalgl"
    for role, names in _ROLES:
        if any(n in joined or n in tokens for n in names):
            return role
    return None


def studiolights_dir() -> Path | None:
    """``<bpy>/<version>/datafiles/studiolights/world`` of the installed bpy wheel, or None."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.origin:
        return None
    found = sorted(Path(spec.origin).parent.glob("*/datafiles/studiolights/world"))
    return found[-1] if found else None


def _local_root(uri: str) -> Path:
    if uri == BUILTIN_ENVIRONMENTS:
        root = studiolights_dir()
        if root is None:
            raise ContentError(f"{uri}: the bpy wheel's studiolights are not installed (pip install bpy)")
        return root
    if uri.startswith("file://"):
        return Path(unquote(urlparse(uri).path))
    if uri.startswith("s3://"):
        return _fetched_root(uri)
    raise ContentError(f"{uri}: unknown source (allowed: builtin:studiolights, file:///dir, s3://bucket/prefix)")


@lru_cache(maxsize=64)
def _fetched_root(uri: str) -> Path:
    """A local copy of an S3 source, downloaded once per process through the asset cache."""
    try:
        return resolve_uri_dir(uri, worker_cache())  # the worker's asset cache, shared with the libraries
    except Unavailable:  # the store did not answer: retryable, not a bad source
        raise
    except OSError as exc:
        raise ContentError(f"{uri}: {exc}") from None


@lru_cache(maxsize=64)
def environment_ids(uri: str) -> tuple[str, ...]:
    """The HDRIs of a source: paths relative to it, sorted (empty when there are none)."""
    root = _local_root(uri)
    if not root.is_dir():
        raise ContentError(f"{uri}: not a readable directory")
    return tuple(sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                        if p.suffix.lower() in ENVIRONMENT_SUFFIXES and p.is_file()))


def environment_path(uri: str, env_id: str) -> Path:
    """The local file of an environment; refuses ids that leave the source."""
    return _inside(_local_root(uri), env_id, uri)


@lru_cache(maxsize=64)
def texture_ids(uri: str) -> tuple[str, ...]:
    """The texture sets of a source: folders holding at least a base-colour map, sorted."""
    root = _local_root(uri)
    if not root.is_dir():
        raise ContentError(f"{uri}: not a readable directory")
    found = {p.parent.relative_to(root).as_posix() for p in root.rglob("*")
             if p.is_file() and map_role(p.name) == "color"}
    return tuple(sorted(found))


@lru_cache(maxsize=256)
def texture_maps(uri: str, set_id: str) -> dict[str, Path]:
    """Role -> file of one texture set (``color`` always present for a listed set)."""
    folder = _inside(_local_root(uri), set_id, uri)
    maps: dict[str, Path] = {}
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        role = map_role(p.name)
        if role and role not in maps and p.is_file():
            maps[role] = p
    return maps


def _inside(root: Path, rel: str, uri: str) -> Path:
    path = (root / rel).resolve()
    if rel.startswith("/") or ".." in Path(rel).parts or not path.is_relative_to(root.resolve()):
        raise ContentError(f"{uri}: {rel!r} leaves the source")
    return path


def environment_catalog(uris: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(uri, id) of every HDRI of the sources, in source order then path order."""
    return tuple((u, i) for u in uris for i in environment_ids(u))


def texture_catalog(uris: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(uri, id) of every texture set of the sources, in source order then path order."""
    return tuple((u, i) for u in uris for i in texture_ids(u))
