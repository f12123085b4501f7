"""``synthctl``: the command line of parallel-synth (the root group).

Each subcommand lives in its own module and is imported only when it runs, so ``synthctl --help``
is fast and ``synthctl crds`` does not import Blender or kopf. Commands of other installed
packages (the renderer's ``render-sample`` and ``assets``) are entry points in group
``parallel_synth.commands``: this package never imports them by name.
"""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points

import click

from synth_contract import plugins

PLUGIN_GROUP = plugins.COMMANDS

# name -> ("module:attribute", one-line help shown by `synthctl --help`)
_COMMANDS: dict[str, tuple[str, str]] = {
    "crds": ("parallel_synth.commands.crds:crds", "Write the CRDs generated from the API models."),
    "validate-manifest": ("parallel_synth.commands.manifest:validate_manifest",
                          "Check every SynthDataset in a manifest file; prints each problem with its field path."),
    "operator": ("parallel_synth.commands.operator:operator", "Run the operator (kopf run options pass through)."),
    "generate": ("parallel_synth.commands.generate:generate", "Render a dataset locally with a process pool."),
    "validate": ("parallel_synth.commands.validate:validate", "Check a rendered dataset; non-zero exit on any problem."),
    "preview": ("parallel_synth.commands.preview:preview", "Contact sheet of samples with masks and boxes."),
    "plan": ("parallel_synth.commands.plan:plan", "Capacity plan: storage, GPU-hours, cost, workers."),
    "simulate": ("parallel_synth.commands.simulate:simulate", "Simulate a fleet on a simulated clock."),
    "index": ("parallel_synth.commands.index:index", "Write a finished dataset's index and dataset.json."),
    "query": ("parallel_synth.commands.query:query", "SQL (DuckDB) over the index, live while the run goes on."),
    "export": ("parallel_synth.commands.export:export", "Export a dataset as COCO, BOP or NeRF (streaming)."),
    "report": ("parallel_synth.commands.report:report", "HTML report: balance, coverage, quality, worst samples, cost."),
    "feedback": ("parallel_synth.commands.feedback:feedback",
                 "Append the next schedule segment from per-sample training losses (closed loop)."),
}

_PLUGIN_HELP = {
    "render-sample": "Re-render one sample by its global index.",
    "assets": "Check an asset library: classes, sizes, licences, problems.",
}
"""Help lines of the commands the renderer package declares (shown without importing it)."""


def _plugins() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP) if ep.name not in _COMMANDS}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS, *_plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _COMMANDS:
            module, attr = _COMMANDS[cmd_name][0].split(":")
            cmd: click.Command = getattr(importlib.import_module(module), attr)
            return cmd
        plugin = _plugins().get(cmd_name)
        if plugin is not None:
            loaded: click.Command = plugin.load()
            return loaded
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        plugins = _plugins()  # one entry-point scan per help page (list_commands would scan again)
        rows = []
        for name in sorted({*_COMMANDS, *plugins}):
            if name in _COMMANDS:
                rows.append((name, _COMMANDS[name][1]))
            else:
                rows.append((name, _PLUGIN_HELP.get(name, f"(from {plugins[name].value})")))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="parallel-synth", prog_name="synthctl")
def cli() -> None:
    """parallel-synth: synthetic image datasets, from a laptop to a spot GPU fleet.

    \b
    Quick start:
      synthctl generate examples/quickstart.yaml --out ./data
      synthctl validate ./data/quickstart/v1
      synthctl preview ./data/quickstart/v1 --out grid.png

    \b
    Exit codes (every command):
      0  ok
      1  the thing checked has problems (a manifest, a dataset, failed shards)
      2  wrong usage, or the input cannot be read (or the output written)
    """


def main() -> None:
    """``synthctl``: click's exit code, with the process ended by :func:`exit_process`."""
    from synth_contract.exitcodes import exit_process

    try:
        cli(prog_name="synthctl")
        code: int | str | None = 0
    except SystemExit as exc:
        code = exc.code
    exit_process(code)


if __name__ == "__main__":
    main()
