"""The worker-process side of asset libraries: one cache, libraries listed once, scene hook.

``apply`` is what ``sample.scene_for`` calls after the category generator: for a category with
``assets: {libraries, share}`` it swaps that share of subject objects for library assets (see
:mod:`.choose`). ``annotate`` adds ``asset: {library, id, license}`` to the sample JSON's
objects and lists the assets the renderer refused. The cache and the library listings live
once per process (a worker renders many shards of one dataset).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from synth_render.assets.choose import with_library_assets
from synth_render.assets.fetch import DEFAULT_CACHE_BYTES, AssetCache
from synth_render.assets.library import Library, load_library, preflight
from synth_render.scene import Scene

_CACHE: dict[str, AssetCache] = {}


def worker_cache(*, endpoint_url: str | None = None, region: str | None = None) -> AssetCache:
    """The process's asset cache (``$SYNTH_ASSET_CACHE_DIR``, else a temp folder removed at exit).

    Its size cap is ``$SYNTH_ASSET_CACHE_BYTES`` (default 4 GiB). The first caller's S3 settings
    stay (a worker serves one dataset).
    """
    if "cache" not in _CACHE:
        root = os.environ.get("SYNTH_ASSET_CACHE_DIR")
        if not root:
            root = tempfile.mkdtemp(prefix=f"parallel-synth-assets-{os.getpid()}-")
            atexit.register(shutil.rmtree, root, ignore_errors=True)
        cap = int(os.environ.get("SYNTH_ASSET_CACHE_BYTES", DEFAULT_CACHE_BYTES))
        _CACHE["cache"] = AssetCache(Path(root), max_bytes=cap, endpoint_url=endpoint_url, region=region)
    return _CACHE["cache"]


@lru_cache(maxsize=16)
def _library(name: str, uri: str, endpoint_url: str | None, region: str | None) -> Library:
    return load_library(name, uri, worker_cache(endpoint_url=endpoint_url, region=region))


def category_assets(spec: Any, category: str) -> tuple[list[Library], float]:
    """The libraries and share of a category ([] and 0 when it uses none)."""
    for c in spec.categories:
        if str(c.name) == category and c.assets is not None:
            uris = {lib.name: lib.uri for lib in spec.assets.libraries}
            ep, region = spec.output.endpoint_url, spec.output.region
            return [_library(n, uris[n], ep, region) for n in c.assets.libraries], float(c.assets.share)
    return [], 0.0


def apply(spec: Any, scene: Scene, *, seed: int, rank: int) -> Scene:
    """The generator's scene with the category's share of objects taken from its libraries."""
    libs, share = category_assets(spec, scene.category)
    if not libs or share <= 0:
        return scene
    return with_library_assets(scene, libs, share=share, seed=seed, rank=rank, dataset_seed=int(spec.seed))


def annotate(meta: dict[str, Any], scene: Scene, renderer: Any) -> None:
    """Add ``asset`` to the JSON objects that show library assets, and ``assetsRejected``."""
    refused = dict(getattr(renderer, "assets_rejected", None) or {})
    used = {o.id: o.asset for o in scene.objects if o.asset is not None}
    for obj in meta.get("objects", []):
        ref = used.get(obj.get("id"))
        if ref is not None and f"{ref.library}/{ref.id}" not in refused:
            obj["asset"] = {"library": ref.library, "id": ref.id, "license": ref.license}
            if ref.attribution:
                obj["asset"]["attribution"] = ref.attribution
    rejected = sorted({(r.library, r.id) for r in used.values() if f"{r.library}/{r.id}" in refused})
    if rejected:
        meta["assetsRejected"] = [{"library": lib, "path": path, "why": refused[f"{lib}/{path}"]}
                                  for lib, path in rejected]


def preflight_messages(spec: Any) -> list[str]:
    """'field: problem' for every asset URI of the spec a worker cannot use (empty when fine)."""
    cache = worker_cache(endpoint_url=spec.output.endpoint_url, region=spec.output.region)
    return [f"{path}: {why}" for path, why in preflight(spec, cache, headers=True)]
