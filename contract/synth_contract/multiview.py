"""Multi-view samples and sequences (``render.views``, ``render.frames``) on the dataset side.

A sample with ``render.views.count = N > 1`` carries, besides its top-level files (which are
view 0), ``{key}.view{k:02d}.{ext}`` for k in 0..N-1 and every pass except ``flow`` (motion is
view 0's only), and a ``views`` list in its JSON: ``[{view, intrinsics, extrinsics, objects}]``
where each object keeps the id it has in every other view. A sequence (``render.frames.count =
T > 1``) has ``{key}.frame{t:03d}.{ext}`` for every pass (flow included) and ``frames: [{frame,
time, intrinsics, extrinsics, objects}]``. ``synthctl validate``, the capacity plan and the
exporters ask this module; it only reads specs and metadata (no Blender).
"""

from __future__ import annotations

import re
from typing import Any

from synth_contract.passes import pass_ext, still_bytes_weights, still_members

VIEW_MEMBER = re.compile(r"^(?:view(\d{2})|frame(\d{3}))\.(.+)$")
"""A view or frame member's extension after the key: ``view03.seg.png`` -> (3, ``seg.png``)."""

NOT_PER_VIEW = frozenset({"flow"})
"""Passes written for view 0 only (the top-level file)."""


def view_count(spec: Any, category: str | None = None) -> int:
    """Cameras per sample of ``category`` (``planning.effective_views``; None: ``spec.render.views``), 1 without."""
    from synth_contract.planning import effective_views

    views = effective_views(spec, category)
    return int(views.count) if views is not None else 1


def frame_count(spec: Any, category: str | None = None) -> int:
    """Frames per sample of ``category`` (``planning.effective_frames``; None: ``spec.render.frames``), 1 without."""
    from synth_contract.planning import effective_frames

    frames = effective_frames(spec, category)
    return int(frames.count) if frames is not None else 1


def max_counts(spec: Any) -> tuple[int, int]:
    """The most cameras and the most frames any category's samples have."""
    cats = [c for _, c in _mix(spec)]
    return max(view_count(spec, c) for c in cats), max(frame_count(spec, c) for c in cats)


def _mix(spec: Any) -> list[tuple[float, str | None]]:
    from synth_contract.planning import render_mix

    return render_mix(spec)


def view_exts(spec: Any, category: str | None = None) -> list[str]:
    """Extensions each view (or frame) has (``png``, ``depth.png``, ``seg.png``, ...), empty for stills."""
    views, frames = view_count(spec, category) > 1, frame_count(spec, category) > 1
    if not views and not frames:
        return []
    render = spec.render
    return [pass_ext(str(p), depth_format=str(render.depth_format)) for p in render.passes
            if frames or str(p) not in NOT_PER_VIEW]


def view_members(spec: Any, category: str | None = None) -> set[str]:
    """Every ``view{k:02d}.{ext}`` / ``frame{t:03d}.{ext}`` member a sample of ``category`` has."""
    exts = view_exts(spec, category)
    if frame_count(spec, category) > 1:
        return {f"frame{t:03d}.{ext}" for t in range(frame_count(spec, category)) for ext in exts}
    return {f"view{k:02d}.{ext}" for k in range(view_count(spec, category)) for ext in exts}


def any_view_members(spec: Any) -> set[str]:
    """The view/frame members of every category's samples together."""
    return set().union(*(view_members(spec, c) for _, c in _mix(spec)))


def split_member(ext: str) -> tuple[int, str] | None:
    """(view or frame, pass extension) of a view/frame member, None for any other member."""
    m = VIEW_MEMBER.match(ext)
    return (int(m.group(1) or m.group(2)), m.group(3)) if m else None


def _matrix(v: Any, rows: int, cols: int) -> bool:
    return (isinstance(v, list) and len(v) == rows
            and all(isinstance(r, list) and len(r) == cols
                    and all(isinstance(x, int | float) and not isinstance(x, bool) for x in r) for r in v))


def series_problems(meta: dict[str, Any], spec: Any) -> list[str]:
    """``views_problems`` for the views and for the frames of a sample (``spec`` None: counts unknown);
    the counts are those of the sample's ``category``."""
    cat = meta.get("category") if isinstance(meta.get("category"), str) else None
    return (views_problems(meta, count=view_count(spec, cat) if spec is not None else None)
            + views_problems(meta, count=frame_count(spec, cat) if spec is not None else None, field="frames"))


def views_problems(meta: dict[str, Any], *, count: int | None, field: str = "views") -> list[str]:
    """What is wrong with a sample's ``views`` (or ``frames``) list (``count``: the spec's, None if unknown)."""
    views = meta.get(field)
    key = field[:-1]
    if views is None:
        return ([f"{field} is missing (render.{field}.count is {count})"]
                if count is not None and count > 1 else [])
    if not isinstance(views, list):
        return [f"{field} is not a list"]
    problems = []
    if count is not None and len(views) != count:
        problems.append(f"{field} has {len(views)} entries, render.{field}.count is {count}")
    known = {o.get("id") for o in (meta.get("scene") or {}).get("objects", []) if isinstance(o, dict)} \
        if isinstance(meta.get("scene"), dict) else None
    for k, v in enumerate(views):
        if not isinstance(v, dict):
            problems.append(f"{field}[{k}] is not an object")
            continue
        if v.get(key) != k:
            problems.append(f"{field}[{k}].{key} is {v.get(key)!r}, expected {k}")
        if not _matrix(v.get("intrinsics"), 3, 3):
            problems.append(f"{field}[{k}].intrinsics is not a 3x3 matrix")
        if not _matrix(v.get("extrinsics"), 4, 4):
            problems.append(f"{field}[{k}].extrinsics is not a 4x4 matrix")
        objs = v.get("objects")
        if not isinstance(objs, list):
            problems.append(f"{field}[{k}].objects is not a list")
            continue
        ids = [o.get("id") for o in objs if isinstance(o, dict)]
        if known is not None:
            strangers = sorted((i for i in ids if i not in known), key=str)
            if strangers:
                problems.append(f"{field}[{k}].objects has ids {strangers} that are not objects of the scene")
    return problems


def view_image_inputs(key: str, members: dict[str, bytes], meta: dict[str, Any]
                      ) -> list[tuple[str, dict[str, bytes], dict[str, Any]]]:
    """Per view: (name like ``{key}.view01``, its members by pass extension, a metadata stub with
    that view's ``objects`` and the sample's ``render`` size), to check like a single-view sample."""
    by_view: dict[tuple[str, int], dict[str, bytes]] = {}
    for ext, data in members.items():
        split = split_member(ext)
        if split is not None:
            by_view.setdefault(("frames" if ext.startswith("frame") else "views", split[0]), {})[split[1]] = data
    out = []
    for (field, k), files in sorted(by_view.items()):
        series = meta.get(field)
        entry = series[k] if isinstance(series, list) and 0 <= k < len(series) and isinstance(series[k], dict) else {}
        stub = {"render": meta.get("render"), "objects": entry.get("objects")} if entry else {"render": meta.get("render")}
        out.append((f"{key}.view{k:02d}" if field == "views" else f"{key}.frame{k:03d}", files, stub))
    return out


# --------------------------------------------------------------------------- planning and cost

EXTRA_VIEW_GPU_SHARE = 0.85
"""Render time of one more view against a single-view sample: the scene is generated, built and
synced once, so a view costs its path tracing, read-back and encoding. Measured with
``benchmarks/bench_views.py`` on the CPU at 128x128 (process CPU time): 0.64 at 4 spp, 0.86 at
16 spp (tracing dominates there; ``bench_frames.py`` gives 0.87 for a frame); on GPUs, where
tracing is fast, the share is lower. Planning errs high."""


def gpu_factor(spec: Any) -> float:
    """GPU time of an average sample of ``spec`` over the same still with one camera (views or frames),
    each category weighted by its share of the samples."""
    return sum(share * (1.0 + (view_count(spec, c) - 1 + frame_count(spec, c) - 1) * EXTRA_VIEW_GPU_SHARE)
               for share, c in _mix(spec))


def _series_weight(spec: Any, category: str | None, weights: dict[str, float]) -> tuple[str, float]:
    if frame_count(spec, category) > 1:  # every pass, flow included, per frame
        return "frames", frame_count(spec, category) * sum(
            w for name, w in weights.items() if name not in ("scene", "views", "frames"))
    n = view_count(spec, category)
    if n < 2:
        return "views", 0.0
    return "views", n * sum(w for name, w in weights.items()
                            if name not in NOT_PER_VIEW and name not in ("scene", "views", "frames"))


def series_bytes_weights(spec: Any, weights: dict[str, float]) -> dict[str, float]:
    """Relative stored size of the ``view{k:02d}.*`` (key ``views``) and ``frame{t:03d}.*`` (``frames``)
    members of an average sample, given the single-view pass ``weights``: N copies of every per-view
    pass for the categories that have them, weighted by their share of the samples."""
    out: dict[str, float] = {}
    for share, c in _mix(spec):
        field, w = _series_weight(spec, c, weights)
        if w:
            out[field] = out.get(field, 0.0) + share * w
    return out


def view_bytes_weight(spec: Any, weights: dict[str, float]) -> float:
    """``series_bytes_weights`` summed: views and frames of an average sample together."""
    return sum(series_bytes_weights(spec, weights).values())


def bytes_factor(spec: Any) -> float:
    """Stored bytes of a sample of ``spec`` over the same sample with one camera."""
    weights = still_bytes_weights(spec)
    base = sum(weights.values()) or 1.0
    return (base + view_bytes_weight(spec, weights)) / base


def estimated_gpu_seconds_per_sample(spec: Any) -> float:
    """``spec.estimates.gpuSecondsPerSample`` (one camera) scaled to the views/frames of an average sample,
    plus the bake time of its simulations (``simcost``; the pod holds its GPU while it bakes)."""
    from synth_contract.simcost import bake_seconds_per_sample

    return float(spec.estimates.gpu_seconds_per_sample) * gpu_factor(spec) + bake_seconds_per_sample(spec)


def estimated_bytes_per_sample(spec: Any) -> float:
    """``spec.estimates.bytesPerSample`` (one camera) scaled to the views/frames of an average sample."""
    return float(spec.estimates.bytes_per_sample) * bytes_factor(spec)


def sample_members(spec: Any, category: str | None = None) -> set[str]:
    """Every tar member extension a sample of ``category`` has: the still's members plus its own
    ``view{k:02d}.*`` / ``frame{t:03d}.*`` (the category's ``render.views``/``frames``)."""
    return still_members(spec) | view_members(spec, category)


def bytes_weights(spec: Any) -> dict[str, float]:
    """Relative stored size of each enabled pass of an average sample: the still's passes plus
    ``views``/``frames`` for the view and frame members (per category share)."""
    out = still_bytes_weights(spec)
    out.update(series_bytes_weights(spec, out))
    return out
