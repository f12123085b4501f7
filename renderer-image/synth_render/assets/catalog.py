"""What a library holds: its files, its optional ``catalog.yaml``, and the checks on paths.

A library is ``{uri}/{class}/{assetId}.{glb|gltf|obj|ply|stl|blend}`` plus an optional
``{uri}/catalog.yaml`` (``assets: [{path, class, sizeMeters, license, attribution}]``). This
module is pure: it turns a list of relative paths (and the catalog text) into
:class:`AssetEntry` records and refuses paths that would escape the library. No I/O, no Blender.
"""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass
from typing import Any

import yaml

FORMATS: tuple[str, ...] = ("glb", "gltf", "obj", "ply", "stl", "blend")
"""Mesh formats a library may hold (the file extension, lower case)."""

CATALOG = "catalog.yaml"
MAX_CATALOG_BYTES = 4_000_000
MIN_SIZE_M, MAX_SIZE_M = 0.005, 200.0
"""Sizes (largest dimension, metres) outside this range are absurd and refused."""

DEFAULT_SIZE_M = 0.6
CLASS_SIZE_M: dict[str, float] = {
    "mug": 0.12, "cup": 0.1, "bottle": 0.3, "can": 0.12, "bowl": 0.18, "plate": 0.26, "glass": 0.14,
    "box": 0.4, "book": 0.25, "phone": 0.15, "laptop": 0.35, "keyboard": 0.45, "shoe": 0.3, "toy": 0.25,
    "vase": 0.35, "lamp": 0.55, "plant": 0.6, "chair": 0.9, "stool": 0.6, "table": 1.2, "sofa": 2.0,
    "bed": 2.0, "cabinet": 1.2, "shelf": 1.6, "tv": 1.0, "bicycle": 1.7, "motorbike": 2.1, "car": 4.4,
    "truck": 7.0, "bus": 11.0, "person": 1.75, "dog": 0.8, "cat": 0.5, "bird": 0.3, "tree": 6.0,
    "rock": 0.8, "barrel": 0.9, "crate": 0.6, "cone": 0.7, "sign": 2.2, "hydrant": 0.8, "bench": 1.6,
}
"""Largest dimension, metres, of an asset whose catalog gives no ``sizeMeters``."""

_CLASS_OK = set("abcdefghijklmnopqrstuvwxyz0123456789_-")


class UnsafePath(ValueError):
    """A path inside a library that would escape it (``..``, absolute, drive, backslash)."""


def safe_relpath(path: str) -> str:
    """``path`` normalised as a relative POSIX path inside a library; raises :class:`UnsafePath`."""
    if not isinstance(path, str) or not path or "\x00" in path:
        raise UnsafePath(f"{path!r}: empty or not a string")
    if "\\" in path:
        raise UnsafePath(f"{path!r}: backslashes are not allowed in library paths")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise UnsafePath(f"{path!r}: absolute paths are not allowed (paths are relative to the library)")
    parts = path.split("/")
    if any(p == ".." for p in parts):
        raise UnsafePath(f"{path!r}: '..' is not allowed (it would leave the library)")
    norm = posixpath.normpath(path)
    if norm in (".", "") or norm.startswith("../"):
        raise UnsafePath(f"{path!r}: does not name a file inside the library")
    return norm


def class_size(cls: str) -> float:
    """Default largest dimension (metres) of an asset of this class."""
    return CLASS_SIZE_M.get(cls.lower().rstrip("s"), CLASS_SIZE_M.get(cls.lower(), DEFAULT_SIZE_M))


@dataclass(frozen=True)
class AssetEntry:
    """One asset of a library: where it is, what it is, how big it should be, who made it."""

    library: str
    path: str
    """Path inside the library (``{class}/{assetId}.{ext}``): the asset's id."""
    cls: str
    format: str
    size_m: float
    license: str = "unknown"
    attribution: str = ""
    bytes: int = 0

    @property
    def key(self) -> str:
        return f"{self.library}/{self.path}"


@dataclass(frozen=True)
class Rejected:
    """An asset that cannot be used, and why (listed in dataset.json ``assetsRejected``)."""

    library: str
    path: str
    why: str

    def as_dict(self) -> dict[str, str]:
        return {"library": self.library, "path": self.path, "why": self.why}


def parse_catalog(text: str | bytes, *, where: str = CATALOG) -> dict[str, dict[str, Any]]:
    """``catalog.yaml`` as {path: {class, sizeMeters, license, attribution}}; raises ValueError."""
    if len(text) > MAX_CATALOG_BYTES:
        raise ValueError(f"{where}: larger than {MAX_CATALOG_BYTES} bytes")
    from synth_contract.validation import StrictSafeLoader

    try:
        doc = yaml.load(text, Loader=StrictSafeLoader)  # a SafeLoader that also refuses aliases
    except yaml.YAMLError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        raise ValueError(f"{where}: not valid YAML ({'; '.join(lines[:2])[:200]})") from exc
    except RecursionError:
        raise ValueError(f"{where}: not valid YAML (nested too deeply)") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict) or not isinstance(doc.get("assets", []), list):
        raise ValueError(f"{where}: expected a mapping with 'assets: [{{path, class, sizeMeters, license, attribution}}]'")
    out: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(doc.get("assets") or []):
        if not isinstance(item, dict) or "path" not in item:
            raise ValueError(f"{where}: assets[{i}] needs a 'path'")
        try:
            path = safe_relpath(str(item["path"]))
        except UnsafePath as exc:
            raise ValueError(f"{where}: assets[{i}].path {exc}") from exc
        size = item.get("sizeMeters")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int | float)
                                 or not math.isfinite(size)):
            raise ValueError(f"{where}: assets[{i}].sizeMeters must be a number of metres, got {size!r}")
        unknown = set(item) - {"path", "class", "sizeMeters", "license", "attribution"}
        if unknown:
            raise ValueError(f"{where}: assets[{i}]: unknown field(s) {', '.join(sorted(unknown))} "
                             "(allowed: path, class, sizeMeters, license, attribution)")
        out[path] = item
    return out


def entries_from_listing(library: str, files: dict[str, int], catalog: dict[str, dict[str, Any]]
                         ) -> tuple[list[AssetEntry], list[Rejected]]:
    """Assets of a library from its file listing ({relative path: bytes}) and catalog.

    Only ``{class}/{assetId}.{format}`` files are assets; other files (MTL, textures, .bin)
    are their companions. Returns the usable entries (sorted by path) and the refused ones.
    """
    entries: list[AssetEntry] = []
    rejected: list[Rejected] = []
    for path in sorted(files):
        ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
        if ext not in FORMATS:
            continue
        try:
            path = safe_relpath(path)
        except UnsafePath as exc:
            rejected.append(Rejected(library, path, str(exc)))
            continue
        meta = catalog.get(path, {})
        parts = path.split("/")
        cls = str(meta.get("class") or (parts[0] if len(parts) > 1 else "")).strip().lower()
        if not cls or not set(cls) <= _CLASS_OK:
            rejected.append(Rejected(library, path, "no class: put it in a {class}/ folder or give 'class' in "
                                                    "catalog.yaml (a-z, 0-9, '_', '-')"))
            continue
        if files[path] == 0:
            rejected.append(Rejected(library, path, "empty file"))
            continue
        size = float(meta["sizeMeters"]) if meta.get("sizeMeters") is not None else class_size(cls)
        if not (MIN_SIZE_M <= size <= MAX_SIZE_M):
            rejected.append(Rejected(library, path, f"sizeMeters {size:g} is absurd "
                                                    f"(allowed {MIN_SIZE_M:g}..{MAX_SIZE_M:g} m)"))
            continue
        entries.append(AssetEntry(library=library, path=path, cls=cls, format=ext, size_m=round(size, 6),
                                  license=str(meta.get("license") or "unknown"),
                                  attribution=str(meta.get("attribution") or ""), bytes=int(files[path])))
    return entries, rejected


def companions(fmt: str, data: bytes) -> list[str]:
    """Relative paths a mesh file refers to (OBJ: mtllib; MTL: maps; glTF: buffers, images).

    Returned as written in the file (callers check them with :func:`safe_relpath` relative to
    the referring file's folder). ``data:`` URIs are embedded, not companions.
    """
    out: list[str] = []
    if fmt == "obj":
        for line in data.decode("utf-8", "replace").splitlines():
            if line.startswith("mtllib "):
                out += line.split(None, 1)[1].strip().split()
    elif fmt == "mtl":
        for line in data.decode("utf-8", "replace").splitlines():
            words = line.strip().split()
            if words and (words[0].lower().startswith("map_") or words[0].lower() in ("bump", "disp", "norm")):
                out.append(words[-1])
    elif fmt == "gltf":
        import json

        try:
            doc = json.loads(data)
        except ValueError:
            return []
        for key in ("buffers", "images"):
            for item in doc.get(key, []) if isinstance(doc, dict) else []:
                uri = item.get("uri") if isinstance(item, dict) else None
                if isinstance(uri, str) and not uri.startswith("data:"):
                    from urllib.parse import unquote

                    out.append(unquote(uri))
    return out


MAGIC: dict[str, tuple[bytes, ...]] = {"glb": (b"glTF",), "ply": (b"ply",), "blend": (b"BLENDER", b"\x28\xb5\x2f\xfd",
                                                                                       b"\x1f\x8b")}


def header_problem(fmt: str, head: bytes, size: int) -> str | None:
    """A cheap check of a file's first bytes: why it cannot be a ``fmt`` file, or None."""
    if size == 0:
        return "empty file"
    magic = MAGIC.get(fmt)
    if magic and not any(head.startswith(m) for m in magic):
        return f"not a {fmt.upper()} file (header {head[:8]!r})"
    if fmt == "glb" and len(head) >= 12 and int.from_bytes(head[8:12], "little") != size:
        return f"corrupt GLB: its header says {int.from_bytes(head[8:12], 'little'):,} bytes, the file has {size:,}"
    if fmt == "stl" and not head.lstrip().lower().startswith(b"solid"):
        if size < 84:
            return "truncated STL (shorter than its 84-byte header)"
        n = int.from_bytes(head[80:84], "little") if len(head) >= 84 else -1
        if n >= 0 and size != 84 + 50 * n:
            return f"corrupt binary STL: header says {n} triangles, file size {size} does not match"
    if fmt in ("obj", "gltf") and b"\x00" in head[:512]:
        return f"not a text {fmt.upper()} file"
    return None
