"""Asset URIs the operator can judge without I/O: what render pods on a cluster cannot read.

A ``builtin:`` name the renderer does not ship, or a ``file://`` library, environment or texture
folder that is not on the shared volume, can never be read by a rendering pod: the operator
turns them into ``SpecValid=False`` with the field path before any Job exists. (Whether an
``s3://`` prefix exists is found by the pods, which exit 2 naming the URI, and by
``synthctl generate`` / ``synthctl assets check`` before a local run.) Pure: no I/O.
"""

from __future__ import annotations

import posixpath
from urllib.parse import unquote, urlparse

from parallel_synth.settings import OperatorSettings
from synth_contract.api import SynthDatasetSpec
from synth_contract.validation import FieldError

BUILTINS = ("studiolights", "sample-objects")
"""``builtin:NAME`` sources shipped in the renderer (keep in step with synth_render.assets.fetch.BUILTINS)."""


def asset_uri_errors(spec: SynthDatasetSpec, settings: OperatorSettings) -> list[FieldError]:
    errors: list[FieldError] = []
    fields = [(f"spec.assets.libraries[{i}].uri", lib.uri) for i, lib in enumerate(spec.assets.libraries)]
    fields += [(f"spec.assets.environments[{i}].uri", e.uri) for i, e in enumerate(spec.assets.environments)]
    fields += [(f"spec.assets.textures[{i}].uri", t.uri) for i, t in enumerate(spec.assets.textures)]
    for path, uri in fields:
        if uri.startswith("builtin:"):
            name = uri.removeprefix("builtin:")
            if name not in BUILTINS:
                errors.append(FieldError(path, f"{uri}: unknown built-in (allowed: "
                                         + ", ".join(f"builtin:{b}" for b in BUILTINS) + ")"))
        elif uri.startswith("file://"):
            local = posixpath.normpath(unquote(urlparse(uri).path) or "/")
            root = posixpath.normpath(settings.file_output_path)
            if not settings.file_output_claim or (local != root and not local.startswith(root.rstrip("/") + "/")):
                errors.append(FieldError(path, f"{uri}: rendering pods cannot read this folder on a cluster; use "
                                         "s3://bucket/prefix" + (f" or a folder below file://{root}"
                                                                 if settings.file_output_claim else "")))
    return errors
