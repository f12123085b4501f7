"""Entry-point groups: how the renderer plugs into ``synthctl`` without either package importing the other.

Declared in pyproject.toml's ``[project.entry-points]``; users add their own in the same groups
(a captioner, another renderer). The group names are part of the contract: keep them stable.
"""

from __future__ import annotations

COMMANDS = "parallel_synth.commands"
"""``synthctl`` subcommands contributed by other packages (``render-sample``, ``assets``)."""
RENDERERS = "parallel_synth.renderers"
"""``fn(spec, shard, store, ...)`` that renders one shard; ``synthctl generate`` uses ``blender``."""
PREFLIGHT = "parallel_synth.preflight"
"""Checks run once before any local worker starts (asset libraries readable)."""
CAPTIONERS = "parallel_synth.captioners"
"""``fn(meta, rgb) -> str``: a caption writer chosen by ``spec.render.captioner``."""
