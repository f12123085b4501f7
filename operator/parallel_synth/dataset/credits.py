"""Credits for ``dataset.json``: every library asset and environment used, and the refused assets.

Pure: :class:`Credits` is fed the samples' metadata one by one (in ``synthctl index`` and the
index Job) and is O(distinct assets) in size. An asset or environment counts once per sample
that shows it, with the license and attribution its library's catalog gave.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BUILTIN_STUDIOLIGHTS = {"license": "CC0-1.0", "attribution": "Greg Zaal, Poly Haven (polyhaven.com)"}
"""The HDRIs shipped inside bpy (``builtin:studiolights``): their license.txt says CC0."""


@dataclass
class Credits:
    assets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    environments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    rejected: dict[tuple[str, str], str] = field(default_factory=dict)

    def add_sample(self, meta: dict[str, Any]) -> None:
        seen: set[tuple[str, str]] = set()
        for obj in meta.get("objects") or []:
            a = obj.get("asset") if isinstance(obj, dict) else None
            if not isinstance(a, dict) or "library" not in a or "id" not in a:
                continue
            k = (str(a["library"]), str(a["id"]))
            entry = self.assets.setdefault(k, {"library": k[0], "id": k[1], "license": str(a.get("license") or
                                                                                          "unknown"),
                                               "attribution": str(a.get("attribution") or ""), "samples": 0})
            if k not in seen:
                entry["samples"] += 1
                seen.add(k)
        env = meta.get("environment")
        if isinstance(env, dict) and env.get("uri") and env.get("id"):
            k = (str(env["uri"]), str(env["id"]))
            default = BUILTIN_STUDIOLIGHTS if k[0] == "builtin:studiolights" else {}
            e = self.environments.setdefault(k, {
                "uri": k[0], "id": k[1],
                "license": str(env.get("license") or default.get("license") or "unknown"),
                "attribution": str(env.get("attribution") or default.get("attribution") or ""), "samples": 0})
            e["samples"] += 1
        for r in meta.get("assetsRejected") or []:
            if isinstance(r, dict) and r.get("path"):
                self.rejected.setdefault((str(r.get("library", "")), str(r["path"])), str(r.get("why", "")))

    def doc(self) -> dict[str, Any]:
        """The ``credits`` and ``assetsRejected`` entries of dataset.json."""
        return {
            "credits": {"assets": [self.assets[k] for k in sorted(self.assets)],
                        "environments": [self.environments[k] for k in sorted(self.environments)]},
            "assetsRejected": [{"library": lib, "path": p, "why": why} for (lib, p), why in sorted(self.rejected.items())],
        }
