"""``synthctl render-sample``: re-render one sample of a dataset from its global index.

The sample is planned, generated and rendered exactly as the shard worker does it, so on the
same machine and engine its pixels and metadata are identical to the copy in the shard (the
metadata holds no wall-clock timings; those live in the shard manifest).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from synth_render import sample as _sample


@click.command("render-sample")
@click.argument("manifest", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--index", "index", type=int, required=True, help="Global sample index to re-render.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory for {key}.png, {key}.json and the other passes.")
def render_sample_cmd(manifest: str, index: int, out: Path) -> None:
    """Re-render one sample by its global index (identical pixels and metadata on the same engine).

    \b
    Exit codes: 0 rendered; 1 the manifest has problems (each printed with its field path);
    2 wrong usage (--index out of range) or the manifest cannot be read.
    """
    from synth_contract.validation import EXIT_PROBLEMS, EXIT_USAGE, load_dataset, one_line
    from synth_render.assets.fetch import Unavailable, Unreachable
    from synth_render.captions import CaptionerError
    from synth_render.content import ContentError

    obj = load_dataset(manifest)
    spec = obj.spec
    if not 0 <= index < spec.samples:
        click.echo(f"--index {index} out of range: the dataset has samples 0..{spec.samples - 1}", err=True)
        sys.exit(EXIT_USAGE)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        click.echo(f"--out {out}: cannot create the folder: {one_line(exc)}", err=True)
        sys.exit(EXIT_USAGE)
    problems = _asset_problems(spec)
    if problems:
        for where, why in problems:
            click.echo(f"{where}: {one_line(Exception(why), 400)}", err=True)
        sys.exit(EXIT_USAGE)
    from synth_render.blender.renderer import BlenderRenderer

    try:
        renderer = BlenderRenderer(device=str(spec.render.device), engine=str(spec.render.engine))
        plan = _sample.plan_sample(spec, index)
        sample = _sample.render_sample(spec, plan, renderer, dataset=obj.metadata.name)
    except CaptionerError as exc:
        click.echo(f"{manifest}: {one_line(exc, 400)}", err=True)
        sys.exit(EXIT_PROBLEMS)
    except (Unreachable, Unavailable, ContentError) as exc:  # a source the pre-flight could not see
        click.echo(f"{manifest}: spec.assets: {one_line(exc, 400)}", err=True)
        sys.exit(EXIT_USAGE)
    try:
        for ext, data in sample.files.items():
            (out / f"{sample.key}.{ext}").write_bytes(data)
    except OSError as exc:
        click.echo(f"--out {out}: cannot write: {one_line(exc)}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"sample {index} ({plan.category}, shard {plan.shard}, score {sample.score:.3f}, "
               f"{sample.attempts} attempt(s)) -> {out}/{sample.key}.*")


def _asset_problems(spec: object) -> list[tuple[str, str]]:
    """The asset pre-flight ``generate`` runs (every library, environment and texture URI listed, each
    catalog read), with short S3 timeouts: (field, problem); a store that does not answer is one too."""
    import json
    import os
    import tempfile

    from synth_render.assets.fetch import AssetCache, Unavailable, interactive_client
    from synth_render.assets.library import preflight

    out = getattr(spec, "output", None)
    endpoint, region = getattr(out, "endpoint_url", None), getattr(out, "region", None)
    wire = spec.wire() if hasattr(spec, "wire") else {}
    s3 = "s3://" in json.dumps(wire.get("assets") or {})
    with tempfile.TemporaryDirectory(prefix="synth-render-sample-preflight-") as tmp:
        cache = AssetCache(Path(os.environ.get("SYNTH_ASSET_CACHE_DIR") or tmp), endpoint_url=endpoint,
                           region=region, client=interactive_client(endpoint, region) if s3 else None)
        try:
            return preflight(spec, cache, headers=True)
        except Unavailable as exc:
            return [("spec.assets", f"{exc} (the store did not answer)")]


render_sample = render_sample_cmd
