"""``synthctl report``: one self-contained HTML page about a dataset, finished or still being rendered.

Reads ``dataset.json`` (counts, categories, schedule segments, quality, quarantine, coverage,
render time, the spec's prices), the index's score columns (not the per-sample JSON) and the
images of the few worst samples; while the run goes on (no ``dataset.json`` yet) the same figures
over the shards committed so far, from their manifests and index parts (``index.live_summary``),
for a local run (its ``local-run.json``) or any run given its spec, and writes one HTML file with its plots inline (matplotlib
PNGs as base64 data URIs; small inline SVG histograms for coverage): category balance,
coverage and diversity, the quality distribution with thumbnails of the worst kept and
quarantined samples, and cost. ``gather`` does the reading, ``render_html`` is pure.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from parallel_synth.dataset.files import BadSummary, exists, load_summary, open_file, read, strict_json
from parallel_synth.dataset.images import decode_png
from parallel_synth.dataset.tars import Hostile, ScanResult, scan_shard
from synth_contract import layout
from synth_contract.layout import DATASET_JSON, INDEX_JSONL, INDEX_PARQUET, INDEX_QUARANTINE
from synth_contract.store import Store
from synth_contract.validation import one_line

THUMB = 112
MAX_PARAM_PLOTS = 6


@dataclass
class ReportData:
    """What the report shows, gathered from a dataset root."""

    doc: dict[str, Any]
    scores: np.ndarray
    categories: list[str]
    components: dict[str, float] = field(default_factory=dict)
    worst: list[dict[str, Any]] = field(default_factory=list)
    """Lowest-scoring kept samples: key, shard, category, score, thumbnail (PNG bytes or None)."""
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    """Quarantined samples (worst first): key, shard, category, score, reasons, thumbnail."""
    notes: list[str] = field(default_factory=list)
    """What could not be shown and why (a damaged shard, a broken image), printed as warnings."""


class ReportInput(ValueError):
    """A file the report reads (dataset.json, the index, the quarantine list) cannot be used: names it."""


Columns = tuple[np.ndarray, list[str], list[str], list[int], dict[str, float]]
"""(scores, keys, categories, shards, mean quality components) of the kept samples."""


def _table_columns(table: Any) -> Columns:
    """``Columns`` of an index table (key, shard, category, score and, when there, quality)."""
    import pyarrow as pa

    scores = np.asarray(table.column("score").to_numpy(zero_copy_only=False), dtype=np.float64)
    comps: dict[str, float] = {}
    if "quality" in table.column_names and pa.types.is_struct(table.column("quality").type):
        flat = table.column("quality").combine_chunks()
        for i, f in enumerate(flat.type):
            values = np.asarray(flat.field(i).to_numpy(zero_copy_only=False), dtype=np.float64)
            raw = ("score", "visibleObjects", "expectedObjects", "noiseSigma", "mean", "clipped")  # not 0..1
            if f.name not in raw and np.isfinite(values).any():
                comps[f.name] = float(np.nanmean(values))
    keys, cats = [str(k) for k in table.column("key").to_pylist()], table.column("category").to_pylist()
    shards = [int(v) for v in table.column("shard").to_pylist()]
    return scores, keys, [str(c) for c in cats], shards, comps


def _index_columns(files: Store) -> Columns:
    if exists(files, INDEX_PARQUET):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(io.BytesIO(read(files, INDEX_PARQUET)))
            cols = [c for c in ("key", "shard", "category", "score", "quality") if c in pf.schema_arrow.names]
            missing = {"key", "shard", "category", "score"} - set(cols)
            if missing:
                raise ValueError(f"no column {', '.join(sorted(missing))}")
            return _table_columns(pf.read(columns=cols))
        except (OSError, ValueError, TypeError, pa.ArrowException) as exc:
            raise ReportInput(f"{INDEX_PARQUET}: {one_line(exc, 200)}") from None
    keys, cats, shards, sc = [], [], [], []
    for n, row in enumerate(_jsonl(files, INDEX_JSONL)):
        key, cat, shard, score = row.get("key"), row.get("category"), row.get("shard"), row.get("score")
        if not (isinstance(key, str) and isinstance(cat, str) and _is_int(shard)
                and (score is None or _is_number(score))):
            raise ReportInput(f"{INDEX_JSONL} line {n + 1}: needs key and category (strings), shard (an integer) "
                              "and score (a number or null)")
        keys.append(key)
        cats.append(cat)
        shards.append(int(shard or 0))
        sc.append(float(score) if score is not None else np.nan)
    return np.asarray(sc, dtype=np.float64), keys, cats, shards, {}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**53


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and abs(v) < 1e300


def _jsonl(files: Store, rel: str) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file, each line checked; :class:`ReportInput` names the file and line."""
    try:
        text = read(files, rel).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReportInput(f"{rel}: not UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise ReportInput(f"{rel}: {one_line(exc, 200)}") from None
    rows = []
    for n, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            row = strict_json(line.encode())
        except (ValueError, RecursionError) as exc:
            raise ReportInput(f"{rel} line {n + 1}: not valid JSON: {one_line(exc, 120)}") from None
        if not isinstance(row, dict):
            raise ReportInput(f"{rel} line {n + 1}: must be a JSON object, not {type(row).__name__}")
        rows.append(row)
    return rows


def _thumbnails(files: Store, tar_rel: str, keys: set[str], notes: list[str]) -> dict[str, bytes]:
    """The RGB images of ``keys`` from one tar (one streaming pass of ``tars.scan_shard``, with its
    hostile-member checks), as small PNGs; why an image is missing goes into ``notes``."""
    from PIL import Image

    out: dict[str, bytes] = {}
    if not keys or not exists(files, tar_rel):
        return out
    result = ScanResult()
    try:
        with open_file(files, tar_rel) as stream:
            for item in scan_shard(stream, result, load=frozenset({"png"}), max_member_bytes=64 << 20):
                if isinstance(item, Hostile) or item.key not in keys or "png" not in item.data:
                    continue
                pixels, _, problem = decode_png(item.data["png"])
                if pixels is None:
                    notes.append(f"{tar_rel}: {item.key}.png {problem}: no thumbnail")
                    continue
                img = Image.fromarray(pixels).convert("RGB")
                img.thumbnail((THUMB, THUMB))
                buf = io.BytesIO()
                img.save(buf, format="PNG")
                out[item.key] = buf.getvalue()
                if len(out) == len(keys):
                    break
    except OSError as exc:  # a FIFO, a directory or a link out where the tar should be
        notes.append(f"{tar_rel}: {one_line(exc, 200)}: no thumbnails from it")
    if result.error:
        notes.append(f"{tar_rel}: {result.error}: thumbnails after the damage are missing")
    return out


def _live(files: Store, spec: Any, now: datetime) -> tuple[dict[str, Any], Columns, list[dict[str, Any]]]:
    """A run still going: dataset.json's figures, the index columns and the quarantine entries of the
    shards committed so far, from their manifests, index parts and quarantine lists (never a tar)."""
    from parallel_synth.dataset.files import committed_shards
    from parallel_synth.dataset.index import IndexProblem, live_doc, live_summary, part_columns

    try:
        if spec is not None:
            name = files.uri.rstrip("/").split("/")[-2] if files.uri.count("/") >= 2 else "dataset"
            doc: dict[str, Any] | None = live_summary(spec, name, files, now=now)
        else:
            doc = live_doc(files, now=now)
        if doc is None:
            raise FileNotFoundError(f"{DATASET_JSON} is missing: the dataset is not finished (give --manifest "
                                    "for a run still going, or this is not a dataset root)")
        cols = _table_columns(part_columns(files, ["key", "shard", "category", "score", "quality"]))
    except (IndexProblem, ValueError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ReportInput(f"live figures: {one_line(exc, 200)}") from None
    held: list[dict[str, Any]] = []
    for shard in committed_shards(files):
        rel = layout.quarantine_list_path(shard)
        if exists(files, rel):
            try:
                entries = strict_json(read(files, rel, limit=16 << 20)).get("entries") or []
            except (ValueError, RecursionError, AttributeError, OSError) as exc:
                raise ReportInput(f"{rel}: {one_line(exc, 200)}") from None
            held += [{"shard": shard, **e} for e in entries if isinstance(e, dict)]
    return doc, cols, held


def gather(files: Store, *, worst: int = 8, spec: Any = None, now: datetime | None = None) -> ReportData:
    """Read what the report needs; raises FileNotFoundError when the dataset has no dataset.json and
    is no run still going (no ``local-run.json`` and no ``spec``), and :class:`ReportInput` (naming
    the file and field) when dataset.json, the index, a part or the quarantine list cannot be used.

    Without ``dataset.json`` the figures are live (``doc["live"]``): those of the shards committed so far.
    """
    try:
        summary = load_summary(files)
    except BadSummary as exc:
        raise ReportInput(str(exc)) from None
    held: list[dict[str, Any]] | None = None
    if summary is None:
        doc, (scores, keys, cats, shards, comps), held = _live(files, spec, now or datetime.now(UTC))
    else:
        doc = summary[0]
        scores, keys, cats, shards, comps = _index_columns(files)
    data = ReportData(doc=doc, scores=scores, categories=cats, components=comps)
    order = np.argsort(np.where(np.isnan(scores), np.inf, scores), kind="stable")[:worst]
    data.worst = [{"key": keys[i], "shard": int(shards[i]), "category": cats[i], "score": float(scores[i])}
                  for i in order]
    if held is None and exists(files, INDEX_QUARANTINE):
        held = _jsonl(files, INDEX_QUARANTINE)
    if held is not None:
        for n, e in enumerate(held):
            if not (_is_int(e.get("shard")) and isinstance(e.get("key"), str)
                    and (e.get("score") is None or _is_number(e.get("score")))):
                raise ReportInput(f"{INDEX_QUARANTINE} entry {n + 1}: needs shard (an integer), key (a string) "
                                  "and score (a number or null)")
        held.sort(key=lambda e: float(e.get("score") or 0.0))
        data.quarantined = held[:worst]
    by_tar: dict[str, set[str]] = {}
    for w in data.worst:
        by_tar.setdefault(layout.shard_path(w["shard"]), set()).add(w["key"])
    for q in data.quarantined:
        by_tar.setdefault(layout.quarantine_path(int(q["shard"])), set()).add(str(q["key"]))
    thumbs: dict[str, bytes] = {}
    for rel, wanted in sorted(by_tar.items()):
        thumbs.update(_thumbnails(files, rel, wanted, data.notes))
    for item in [*data.worst, *data.quarantined]:
        item["thumbnail"] = thumbs.get(str(item["key"]))
    return data


# --------------------------------------------------------------------------- plots


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)  # no bbox_inches="tight": it draws every figure twice
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _balance_plot(doc: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    cats = doc.get("categories") or {}
    names = list(cats)
    target = [cats[n].get("target", 0) for n in names]
    done = [cats[n].get("completed", 0) for n in names]
    held = [cats[n].get("quarantined", 0) for n in names]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 3), layout="constrained")
    ax.bar(x - 0.2, target, 0.4, label="target", color="#bbb")
    ax.bar(x + 0.2, done, 0.4, label="kept", color="#3a7")
    ax.bar(x + 0.2, held, 0.4, bottom=done, label="quarantined", color="#d54")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("samples")
    ax.legend(fontsize=8)
    return _png(fig)


def _quality_plot(data: ReportData) -> str:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3), layout="constrained")
    kept = data.scores[np.isfinite(data.scores)]
    held = [float(q.get("score") or 0.0) for q in data.quarantined]
    axes[0].hist(kept, bins=20, range=(0, 1), color="#3a7", label=f"kept ({len(kept)})")
    if held:
        axes[0].hist(held, bins=20, range=(0, 1), color="#d54", label="quarantined (worst shown)")
    min_score = (data.doc.get("quality") or {}).get("minScore")
    if isinstance(min_score, int | float):
        axes[0].axvline(min_score, color="k", ls="--", lw=1, label="minScore")
    axes[0].set_xlabel("score")
    axes[0].legend(fontsize=8)
    comps = data.components
    if comps:
        names = sorted(comps)
        axes[1].barh(names, [comps[n] for n in names], color="#47a")
        axes[1].set_xlabel("mean over kept samples")
    else:
        axes[1].axis("off")
    return _png(fig)


def _svg_hist(title: str, p: dict[str, Any]) -> str:
    """One small histogram panel: its title and range labels in HTML (they wrap, never clip or run into the
    next panel's), the bars in an inline SVG (cheap: a dataset has categories x parameters of them)."""
    counts = p.get("counts")
    if p.get("kind") == "numeric" and isinstance(counts, list):
        values = [float(v) for v in counts]
        edges = p.get("bins") or [0.0, 0.0]
        labels = f'<span class="lo">{_e(f"{edges[0]:.3g}")}</span><span class="hi">{_e(f"{edges[-1]:.3g}")}</span>'
    else:
        items = sorted((counts if isinstance(counts, dict) else {}).items(), key=lambda kv: -kv[1])[:10]
        values = [float(v) for _, v in items]
        names = ", ".join(str(k)[:12] for k, _ in items[:3]) + (" ..." if len(items) > 3 else "")
        labels = f'<span class="lo">{_e(names)}</span>'
    w, h = HIST_WIDTH, 70
    peak = max(values, default=0.0) or 1.0
    bw = w / max(len(values), 1)
    bars = "".join(f'<rect x="{i * bw + 1:.1f}" y="{h - v / peak * h:.1f}" width="{max(bw - 2, 1):.1f}" '
                   f'height="{v / peak * h:.1f}" fill="#47a"><title>{v:,.0f}</title></rect>'
                   for i, v in enumerate(values))
    return (f'<div class="hist"><div class="t" title="{_e(title)}">{_e(title)}</div>'
            f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{_e(title)}">{bars}</svg>'
            f'<div class="range">{labels}</div></div>')


HIST_WIDTH = 180
"""Width in CSS pixels of one histogram panel of the report (``_CSS`` sizes ``div.hist`` to it)."""


def _coverage_plots(coverage: dict[str, Any]) -> list[tuple[str, str]]:
    import matplotlib.pyplot as plt

    out = []
    cats = coverage.get("categories") or {}
    if cats:
        names = sorted(cats)
        fig, ax = plt.subplots(figsize=(8, 2.5), layout="constrained")
        ax.bar(names, [cats[n].get("diversity", 0.0) for n in names], color="#a6c")
        ax.set_ylim(0, 1)
        ax.set_ylabel("diversity")
        ax.tick_params(axis="x", rotation=30)
        out.append(("Diversity per category (mean normalised entropy of its histograms)",
                    _img(_png(fig), "diversity per category")))
    for name in sorted(cats):
        params = list((cats[name].get("params") or {}).items())[:MAX_PARAM_PLOTS]
        extra = [(k, {"kind": "categorical", "counts": cats[name][k]}) for k in ("classes", "environments")
                 if cats[name].get(k)]
        panels = [_svg_hist(pname, p) for pname, p in params + extra]
        if panels:
            out.append((f"{name}: {cats[name].get('samples', 0)} samples, diversity "
                        f"{cats[name].get('diversity', 0):.2f}", '<div class="hists">' + "".join(panels) + "</div>"))
    return out


def _strata_rows(coverage: dict[str, Any]) -> list[list[Any]]:
    """One row per category and strata factor: its balance (normalised entropy) and its value counts."""
    rows = []
    for cat, c in sorted((coverage.get("categories") or {}).items()):
        for name, f in (c.get("strata") or {}).items():
            balance = f.get("balance")
            rows.append([cat, name, "-" if balance is None else f"{balance:.2f}",
                         ", ".join(f"{v} {n}" for v, n in (f.get("counts") or {}).items())])
    return rows


# --------------------------------------------------------------------------- HTML

_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
        "th{background:#f4f4f4}td.l,th.l{text-align:left}figure{display:inline-block;margin:4px;font-size:11px;"
        "width:140px;vertical-align:top}img.plot{max-width:100%}h2{border-bottom:1px solid #ddd}"
        # Histogram panels in a wrapping row with a gap; title and range labels wrap inside their panel.
        ".hists{display:flex;flex-wrap:wrap;gap:10px 16px}"
        f".hist{{width:{HIST_WIDTH}px;flex:none;font-size:10px;overflow-wrap:anywhere}}"
        ".hist svg{display:block}.hist .range{display:flex;justify-content:space-between;gap:8px;font-size:9px}"
        ".hist .hi{text-align:right}")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _img(b64: str, alt: str, cls: str = "plot") -> str:
    return f'<img class="{cls}" alt="{_e(alt)}" src="data:image/png;base64,{b64}">'


def _table(head: list[str], rows: list[list[Any]]) -> str:
    h = "".join(f'<th class="l">{_e(c)}</th>' if i == 0 else f"<th>{_e(c)}</th>" for i, c in enumerate(head))
    body = "".join("<tr>" + "".join(f'<td class="l">{_e(c)}</td>' if i == 0 else f"<td>{_e(c)}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _samples(items: list[dict[str, Any]], *, quarantined: bool) -> str:
    if not items:
        return "<p>None.</p>"
    cells = []
    for it in items:
        thumb = (_img(base64.b64encode(it["thumbnail"]).decode(), f"sample {it['key']}", "thumb")
                 if it.get("thumbnail") else "<p>(image not found)</p>")
        why = "; ".join(map(str, it.get("reasons") or [])) if quarantined else ""
        cells.append(f"<figure>{thumb}<figcaption>{_e(it['key'])} {_e(it.get('category', ''))} "
                     f"score {float(it.get('score') or 0):.3f}{('<br>' + _e(why)) if why else ''}</figcaption></figure>")
    return "<div>" + "".join(cells) + "</div>"


def _cost_rows(doc: dict[str, Any]) -> list[list[Any]]:
    spec = doc.get("spec") or {}
    pricing = spec.get("pricing") or {}
    seconds = float(doc.get("renderSeconds") or 0.0)
    gpus = float((spec.get("nodePool") or {}).get("gpusPerWorker", 1) or 0)
    hours = seconds / 3600 * max(gpus, 1.0)
    kept = int((doc.get("samples") or {}).get("completed") or 0)
    rows: list[list[Any]] = [["render time (all attempts)", f"{seconds:,.1f} s"],
                             ["GPU-hours (render time x GPUs per worker)", f"{hours:,.4f}"]]
    for label, key in (("spot", "spotPerGpuHour"), ("on-demand", "onDemandPerGpuHour")):
        if isinstance(pricing.get(key), int | float):
            dollars = hours * float(pricing[key])
            per1k = dollars / kept * 1000 if kept else 0.0
            rows.append([f"cost at {label} price", f"${dollars:,.2f} (${per1k:,.3f} per 1k kept samples)"])
    rows.append(["stored bytes", f"{int(doc.get('bytes') or 0):,}"])
    return rows


def render_html(data: ReportData) -> str:
    """The report page (pure: plots are drawn in memory)."""
    import matplotlib

    matplotlib.use("Agg")
    doc = data.doc
    q = doc.get("quality") or {}
    held = doc.get("quarantine") or {}
    samples = doc.get("samples") or {}
    title = f"{doc.get('name', 'dataset')} v{doc.get('version', '?')}"
    shards = doc.get("shards") or {}
    when = (f"Live, the run still going: {int(shards.get('completed') or 0):,} of {int(shards.get('total') or 0):,} "
            f"shards committed as of {_e(doc.get('createdAt', ''))}" if doc.get("live")
            else f"Created {_e(doc.get('createdAt', ''))}")
    parts = [f"<h1>{_e(title)}</h1>",
             f"<p>{int(samples.get('completed') or 0):,} kept samples of {int(samples.get('target') or 0):,} "
             f"targeted; {int(held.get('samples') or 0):,} quarantined. {when}.</p>",
             "<h2>Category balance</h2>", _img(_balance_plot(doc), "category balance"),
             _table(["category", "target", "kept", "quarantined"],
                    [[c, v.get("target", 0), v.get("completed", 0), v.get("quarantined", 0)]
                     for c, v in (doc.get("categories") or {}).items()])]
    segs = doc.get("segments") or []
    if len(segs) > 1:
        parts.append("<h3>Schedule segments</h3>")
        parts.append(_table(["segment", "shards", "category", "target", "kept"],
                            [[f"from shard {s.get('fromShard', 0)}",
                              f"{s.get('fromShard', 0)}-{int(s.get('toShard', 0)) - 1}", c,
                              v.get("target", 0), v.get("completed", 0)]
                             for s in segs for c, v in (s.get("categories") or {}).items()]))
    coverage = doc.get("coverage") or {}
    parts.append("<h2>Coverage and diversity</h2>")
    parts.append(f"<p>Overall diversity {float(coverage.get('diversity') or 0):.3f} "
                 "(1: every value or bin equally used; 0: all samples alike).</p>")
    for caption, figure in _coverage_plots(coverage):
        parts.append(f"<h3>{_e(caption)}</h3><div>{figure}</div>")
    strata_rows = _strata_rows(coverage)
    if strata_rows:  # synth_contract.factors: what `synthctl feedback` re-weights
        parts.append("<h3>Strata balance</h3>")
        parts.append(_table(["category", "factor", "balance", "values (samples)"], strata_rows))
    parts.append("<h2>Quality</h2>")
    parts.append(_table(["figure", "value"], [[k, v if not isinstance(v, float) else f"{v:.4f}"]
                                              for k, v in q.items()]))
    parts.append(_img(_quality_plot(data), "quality distribution"))
    if held.get("reasons"):
        parts.append(_table(["quarantine reason", "samples"], [[k, v] for k, v in held["reasons"].items()]))
    parts.append("<h3>Worst kept samples</h3>")
    parts.append(_samples(data.worst, quarantined=False))
    parts.append("<h3>Quarantined samples (worst first)</h3>")
    parts.append(_samples(data.quarantined, quarantined=True))
    parts.append("<h2>Cost</h2>")
    parts.append(_table(["item", "value"], _cost_rows(doc)))
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{_e(title)} report</title>\n'
            f"<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
