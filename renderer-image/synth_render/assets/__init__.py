"""Asset libraries, environments and textures: listing, path checks, fetch and cache, choice.

Pure and Blender-free (the Blender side is :mod:`synth_render.blender.assets`):

- :mod:`.catalog`: library layout, ``catalog.yaml``, path safety, cheap header checks;
- :mod:`.fetch`: ``file://`` / ``s3://`` / ``builtin:`` into a per-worker LRU cache
  (:func:`resolve_uri_dir`, :func:`fetch_file`, :func:`list_uri`);
- :mod:`.library`: a library's usable assets, and the pre-run check of every asset URI;
- :mod:`.choose`: which subject objects become which assets, seeded per sample;
- :mod:`.credits`: what ``dataset.json`` says about the assets used and refused;
- :mod:`.sample_library`: the project's generated sample library.
"""

from synth_render.assets.fetch import (
    AssetCache,
    Unavailable,
    Unreachable,
    fetch_file,
    list_uri,
    resolve_uri_dir,
)

__all__ = ["AssetCache", "Unavailable", "Unreachable", "fetch_file", "list_uri", "resolve_uri_dir"]
