"""Libraries as the renderer sees them: listed once, checked, grouped by class.

``load_library`` lists a library URI (see :mod:`~synth_render.assets.fetch`), reads its
optional ``catalog.yaml`` and returns the usable assets and the refused ones. ``preflight``
checks every URI of ``spec.assets`` before a run and names the field of each problem, so
``synthctl generate`` and the operator can fail fast (exit 2 / ``SpecValid=False``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synth_render.assets.catalog import (
    CATALOG,
    FORMATS,
    MAX_CATALOG_BYTES,
    AssetEntry,
    Rejected,
    UnsafePath,
    entries_from_listing,
    header_problem,
    parse_catalog,
)
from synth_render.assets.fetch import AssetCache, Unreachable, fetch_file, list_uri, local_root, skipped_files


@dataclass(frozen=True)
class Library:
    """The usable assets of one library (sorted by path) and the refused ones."""

    name: str
    uri: str
    entries: tuple[AssetEntry, ...]
    rejected: tuple[Rejected, ...] = ()

    @property
    def classes(self) -> dict[str, tuple[AssetEntry, ...]]:
        out: dict[str, list[AssetEntry]] = {}
        for e in self.entries:
            out.setdefault(e.cls, []).append(e)
        return {k: tuple(v) for k, v in sorted(out.items())}


class NoUsableAsset(ValueError):
    """A library that lists no asset the renderer could use."""


def load_library(name: str, uri: str, cache: AssetCache, *, headers: bool = False) -> Library:
    """List a library and read its catalog; raises Unreachable, or NoUsableAsset when it is empty.

    ``headers``: also read the first bytes of each asset of a local (file://, builtin:) library and
    refuse the ones whose header is not their format's (cheap there; an S3 library is not opened).
    """
    files = list_uri(uri, cache)
    skipped = skipped_files(uri, cache)
    if CATALOG in skipped:  # a symlink to /dev/zero, a FIFO: never read, and never silently ignored
        raise NoUsableAsset(f"{uri}/{CATALOG}: {skipped[CATALOG]}: the catalog must be a regular file")
    catalog: dict[str, dict[str, Any]] = {}
    if CATALOG in files:
        if files[CATALOG] > MAX_CATALOG_BYTES:
            raise NoUsableAsset(f"{uri}/{CATALOG}: larger than {MAX_CATALOG_BYTES:,} bytes")
        try:
            with fetch_file(uri, CATALOG, cache).open("rb") as f:
                text = f.read(MAX_CATALOG_BYTES + 1)
            catalog = parse_catalog(text, where=f"{uri}/{CATALOG}")
        except (ValueError, UnsafePath) as exc:
            raise NoUsableAsset(str(exc)) from exc
    entries, rejected = entries_from_listing(name, files, catalog)
    rejected += [Rejected(name, rel, why) for rel, why in sorted(skipped.items())
                 if rel.rsplit(".", 1)[-1].lower() in FORMATS]
    if headers and local_root(uri, cache) is not None:
        kept = []
        for e in entries:
            try:
                with fetch_file(uri, e.path, cache).open("rb") as f:
                    problem = header_problem(e.format, f.read(512), e.bytes)
            except (OSError, UnsafePath) as exc:
                problem = f"cannot be read: {exc}"
            if problem:
                rejected.append(Rejected(name, e.path, problem))
            else:
                kept.append(e)
        entries = kept
    if not entries:
        why = "; ".join(f"{r.path}: {r.why}" for r in rejected[:3])
        raise NoUsableAsset(f"{uri}: no usable asset (expected {{class}}/{{assetId}}.glb|gltf|obj|ply|stl|blend)"
                            + (f"; refused: {why}" if why else ""))
    return Library(name=name, uri=uri, entries=tuple(entries), rejected=tuple(rejected))


def _assets(spec: Any) -> Mapping[str, Any]:
    """spec.assets as wire data, from a SynthDatasetSpec or its wire dict."""
    wire = spec.wire() if hasattr(spec, "wire") else spec
    return wire.get("assets") or {}


def used_libraries(spec: Any) -> set[str]:
    """Names of the libraries some category draws from."""
    wire = spec.wire() if hasattr(spec, "wire") else spec
    return {n for c in wire.get("categories", []) for n in ((c.get("assets") or {}).get("libraries") or [])}


def preflight(spec: Any, cache: AssetCache, *, environments: bool = True, headers: bool = False
              ) -> list[tuple[str, str]]:
    """(field path, problem) for every asset URI of the spec that cannot be used.

    A URI whose store does not answer this time is no problem of the spec: its
    :class:`~synth_render.assets.fetch.Unavailable` propagates (the worker exits 1, retryable).
    """
    problems: list[tuple[str, str]] = []
    assets = _assets(spec)
    used = used_libraries(spec)
    for i, lib in enumerate(assets.get("libraries", [])):
        if lib["name"] not in used:
            continue
        try:
            load_library(lib["name"], lib["uri"], cache, headers=headers)
        except (Unreachable, NoUsableAsset) as exc:
            problems.append((f"spec.assets.libraries[{i}].uri", str(exc)))
    kinds = ("environments", "textures") if environments else ("textures",)
    for kind in kinds:
        for i, src in enumerate(assets.get(kind, [])):
            try:
                list_uri(src["uri"], cache)
            except Unreachable as exc:
                problems.append((f"spec.assets.{kind}[{i}].uri", str(exc)))
    return problems
