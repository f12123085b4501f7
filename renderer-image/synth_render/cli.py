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
    from synth_contract.validation import load_dataset

    obj = load_dataset(manifest)
    spec = obj.spec
    if not 0 <= index < spec.samples:
        click.echo(f"--index {index} out of range: the dataset has samples 0..{spec.samples - 1}", err=True)
        sys.exit(2)
    from synth_render.blender.renderer import BlenderRenderer

    renderer = BlenderRenderer(device=str(spec.render.device), engine=str(spec.render.engine))
    plan = _sample.plan_sample(spec, index)
    sample = _sample.render_sample(spec, plan, renderer, dataset=obj.metadata.name)
    out.mkdir(parents=True, exist_ok=True)
    for ext, data in sample.files.items():
        (out / f"{sample.key}.{ext}").write_bytes(data)
    click.echo(f"sample {index} ({plan.category}, shard {plan.shard}, score {sample.score:.3f}, "
               f"{sample.attempts} attempt(s)) -> {out}/{sample.key}.*")


render_sample = render_sample_cmd
