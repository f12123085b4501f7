"""``synthctl assets check URI`` and the asset pre-flight of ``synthctl generate``.

``assets check`` lists a library the way a worker will (layout, ``catalog.yaml``, path checks),
then opens every asset without Blender (trimesh for GLB/glTF/OBJ/PLY/STL, the header for
.blend) and reports classes, counts, sizes, licences and problems. ``preflight_problems`` is
what ``generate`` runs before any worker starts: an asset URI that cannot be read, or a
library with no usable asset, stops the run with exit 2 and the field that names it.
Both reach ``synthctl`` through the entry points declared in pyproject.toml (this package never
imports the operator's).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import click

from synth_contract.validation import EXIT_PROBLEMS, EXIT_USAGE
from synth_render.assets.catalog import MAX_SIZE_M, UnsafePath, header_problem
from synth_render.assets.fetch import AssetCache, Unavailable, Unreachable, fetch_asset, interactive_client
from synth_render.assets.library import NoUsableAsset, load_library, preflight

EXIT_OK = 0


def preflight_problems(spec: Any, *, cache_dir: Path | None = None) -> list[tuple[str, str]]:
    """(field path, problem) for every asset URI of the spec that cannot be used."""
    with tempfile.TemporaryDirectory(prefix="synth-assets-preflight-") as tmp:
        cache = AssetCache(cache_dir or Path(tmp), endpoint_url=spec.output.endpoint_url, region=spec.output.region)
        return preflight(spec, cache, headers=True)


def _mesh_problem(path: Path, fmt: str) -> tuple[str | None, dict[str, Any]]:
    """Open a mesh without Blender: (problem or None, {triangles, extent})."""
    head = path.open("rb").read(512)
    problem = header_problem(fmt, head, path.stat().st_size)
    if problem or fmt == "blend":
        return problem, {}
    try:
        import trimesh

        loaded = trimesh.load(str(path), force="mesh", process=False)
    except Exception as exc:
        return f"cannot be read: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", {}
    faces = len(getattr(loaded, "faces", []))
    if faces == 0:
        return "no faces", {}
    ext = float(max(loaded.extents)) if loaded.extents is not None else 0.0
    info = {"triangles": faces, "extent": round(ext, 6)}
    if not ext > 0 or ext > MAX_SIZE_M * 1000:
        return f"absurd size: largest dimension {ext:g} in file units", info
    return None, info


@click.group("assets")
def assets() -> None:
    """Asset libraries: check one before a run."""


@assets.command("check")
@click.argument("uri")
@click.option("--endpoint-url", default=None, help="S3 endpoint (MinIO, R2...) for s3:// URIs.")
@click.option("--region", default=None, help="S3 region.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--no-open", "no_open", is_flag=True, help="Only list and check paths; do not open the meshes.")
def check(uri: str, endpoint_url: str | None, region: str | None, as_json: bool, no_open: bool) -> None:
    """Classes, counts, sizes, licences and import problems of the library at URI.

    \b
    URI: file:///dir, s3://bucket/prefix or builtin:sample-objects.
    Exit codes: 0 every asset is usable; 1 some assets have problems (each listed);
    2 the library cannot be read or holds no usable asset.
    """
    with tempfile.TemporaryDirectory(prefix="synth-assets-check-") as tmp:
        client = interactive_client(endpoint_url, region) if uri.startswith("s3://") else None
        cache = AssetCache(Path(tmp), endpoint_url=endpoint_url, region=region, client=client)
        try:
            lib = load_library("library", uri, cache)
        except (Unreachable, Unavailable, NoUsableAsset, ValueError) as exc:
            click.echo(f"{uri}: {exc}" if not str(exc).startswith(uri) else str(exc), err=True)
            sys.exit(EXIT_USAGE)
        problems = [{"path": r.path, "why": r.why} for r in lib.rejected]
        rows = []
        for e in lib.entries:
            row: dict[str, Any] = {"path": e.path, "class": e.cls, "format": e.format, "sizeMeters": e.size_m,
                                   "license": e.license, "bytes": e.bytes}
            if not no_open:
                try:
                    local = fetch_asset(uri, e.path, cache)
                    why, info = _mesh_problem(local, e.format)
                    row.update(info)
                except (UnsafePath, FileNotFoundError, OSError) as exc:
                    why = str(exc)
                if why:
                    problems.append({"path": e.path, "why": why})
            rows.append(row)
    bad = {p["path"] for p in problems}
    usable = [r for r in rows if r["path"] not in bad]
    classes = Counter(r["class"] for r in usable)
    licences = Counter(r["license"] for r in usable)
    report = {"uri": uri, "assets": len(rows), "usable": len(usable), "classes": dict(sorted(classes.items())),
              "licenses": dict(sorted(licences.items())), "problems": problems, "items": rows}
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"{uri}: {len(usable)} usable of {len(rows)} assets in {len(classes)} classes")
        for cls, n in sorted(classes.items()):
            sizes = sorted({r["sizeMeters"] for r in usable if r["class"] == cls})
            size = f"{sizes[0]:g} m" if len(sizes) == 1 else f"{sizes[0]:g}-{sizes[-1]:g} m"
            tris = [r["triangles"] for r in usable if r["class"] == cls and "triangles" in r]
            tri = f", {min(tris)}-{max(tris)} triangles" if tris else ""
            click.echo(f"  {cls:<16} {n:>5} assets, {size}{tri}")
        click.echo("licenses: " + ", ".join(f"{k} ({v})" for k, v in sorted(licences.items())))
        for p in problems:
            click.echo(f"problem: {p['path']}: {p['why']}", err=True)
    if not usable:
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_PROBLEMS if problems else EXIT_OK)
