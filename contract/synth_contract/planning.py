"""Planning: how a dataset is cut into shards, categories, seeds and batches.

Pure functions, no I/O. The operator, the local generator, the renderer and the simulator all
call these, so that a sample's index, category, seed and shard are the same wherever it is
rendered. Everything here is O(1) or O(number of categories) per call, so a 5x10^8-sample
dataset plans in microseconds and never materialises a per-sample or per-shard list.

Category assignment: samples are laid out in blocks of ``CATEGORY_BLOCK`` indices. Within a
block each category gets its largest-remainder share of the weights, and the block's order
interleaves categories with smooth weighted round-robin, so any prefix of the dataset (a run
stopped at any point, a single shard) is balanced to within one sample per category per block.
Per-category counts over any index range are closed-form (``category_counts``).
``spec.schedule`` cuts the shards into segments (``segments``), each with its own weights and its
own blocks starting at its first index; a segment never changes the samples before it.
"""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from synth_contract.api import SynthDatasetSpec

CATEGORY_BLOCK = 1000
"""Indices per interleaving block; per-category targets are exact for multiples of it."""


# --------------------------------------------------------------------------- seeds


def sample_seed(dataset_seed: int, version: str, index: int) -> int:
    """The seed of one sample: a function of (dataset seed, version, global index) only."""
    digest = hashlib.blake2b(f"{dataset_seed}:{version}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF_FFFF_FFFF


def derived_seed(seed: int, attempt: int) -> int:
    """The seed of a re-render (quality gate) of a sample: recorded in its metadata."""
    if attempt == 0:
        return seed
    digest = hashlib.blake2b(f"{seed}/rerender/{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF_FFFF_FFFF


def unit_hash(seed: int, salt: str) -> float:
    """A deterministic number in [0, 1) from a seed and a salt."""
    digest = hashlib.blake2b(f"{seed}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


# --------------------------------------------------------------------------- categories


@dataclass(frozen=True)
class CategoryLayout:
    """The interleaved order of categories within one block of ``CATEGORY_BLOCK`` samples."""

    names: tuple[str, ...]
    block: tuple[int, ...]  # category position for each offset in the block
    prefix: tuple[tuple[int, ...], ...]  # prefix[c][k] = count of category c in block[:k]

    @property
    def per_block(self) -> tuple[int, ...]:
        return tuple(p[-1] for p in self.prefix)


def _shares(weights: tuple[float, ...], total: int) -> list[int]:
    """Largest-remainder apportionment of ``total`` by ``weights``."""
    s = sum(weights)
    exact = [w / s * total for w in weights]
    floors = [math.floor(x) for x in exact]
    left = total - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return floors


@lru_cache(maxsize=64)
def _layout(names: tuple[str, ...], weights: tuple[float, ...]) -> CategoryLayout:
    counts = _shares(weights, CATEGORY_BLOCK)
    current = [0] * len(names)
    block: list[int] = []
    # Smooth weighted round-robin (as nginx balances upstreams): every prefix stays proportional.
    for _ in range(CATEGORY_BLOCK):
        for i, c in enumerate(counts):
            current[i] += c
        best = max(range(len(names)), key=lambda i: (current[i], -i))
        current[best] -= CATEGORY_BLOCK
        block.append(best)
    prefix = []
    for c in range(len(names)):
        acc = [0]
        for b in block:
            acc.append(acc[-1] + (1 if b == c else 0))
        prefix.append(tuple(acc))
    return CategoryLayout(names=names, block=tuple(block), prefix=tuple(prefix))


def _layout_of(categories: Sequence[Any]) -> CategoryLayout:
    active = [(str(c.name), float(c.weight)) for c in categories if c.weight > 0]
    return _layout(tuple(n for n, _ in active), tuple(w for _, w in active))


def category_layout(spec: SynthDatasetSpec) -> CategoryLayout:
    """The category layout of a dataset's first segment (only categories with weight > 0 take part)."""
    return _layout_of(spec.categories)


@dataclass(frozen=True)
class Segment:
    """A run of shards with one set of category weights: ``spec.categories``, then ``spec.schedule``."""

    from_shard: int
    start: int
    """First global sample index of the segment."""
    stop: int | None
    """First index of the next segment (None: the last segment runs to the end)."""
    layout: CategoryLayout
    factors: Any = None
    """The segment's ``factors`` weights ``{category: {factor: {value: weight}}}`` (None: natural shares)."""


def segments(spec: SynthDatasetSpec) -> tuple[Segment, ...]:
    """The schedule's segments in order; the first is ``spec.categories`` from shard 0.

    A sample's category depends only on the segments that start at or before its shard, and a
    segment's interleaving starts afresh at its first index, so appending a segment never moves
    a sample of an earlier shard and every segment's prefix is balanced on its own.
    """
    starts = [(0, spec.categories, None)] + [(s.from_shard, s.categories, getattr(s, "factors", None))
                                             for s in sorted(getattr(spec, "schedule", None) or [],
                                                             key=lambda s: s.from_shard)]
    out = []
    for i, (shard, cats, factors) in enumerate(starts):
        nxt = starts[i + 1][0] * spec.shard_size if i + 1 < len(starts) else None
        out.append(Segment(from_shard=shard, start=shard * spec.shard_size, stop=nxt, layout=_layout_of(cats),
                           factors=factors or None))
    return tuple(out)


def _segment_at(segs: tuple[Segment, ...], index: int) -> Segment:
    return segs[bisect_right([s.start for s in segs], index) - 1]


def segment_of_shard(spec: SynthDatasetSpec, shard: int) -> Segment:
    """The schedule segment a shard belongs to."""
    return _segment_at(segments(spec), shard * spec.shard_size)


def factor_weights(spec: SynthDatasetSpec, index: int) -> Any:
    """The ``factors`` weights of the segment that holds a global index (None: natural shares)."""
    return _segment_at(segments(spec), index).factors


def category_of(spec: SynthDatasetSpec, index: int) -> str:
    """The category of the sample at a global index."""
    seg = _segment_at(segments(spec), index)
    return seg.layout.names[seg.layout.block[(index - seg.start) % CATEGORY_BLOCK]]


def _count_before(layout: CategoryLayout, c: int, index: int) -> int:
    blocks, rest = divmod(index, CATEGORY_BLOCK)
    return blocks * layout.prefix[c][-1] + layout.prefix[c][rest]


def category_rank(spec: SynthDatasetSpec, index: int) -> int:
    """How many samples of the same category come before this index (for stratification)."""
    name = category_of(spec, index)
    return category_counts(spec, 0, index).get(name, 0)


def _segment_counts(seg: Segment, start: int, stop: int) -> dict[str, int]:
    lo = max(start, seg.start)
    hi = stop if seg.stop is None else min(stop, seg.stop)
    if hi <= lo:
        return {}
    layout = seg.layout
    return {name: _count_before(layout, c, hi - seg.start) - _count_before(layout, c, lo - seg.start)
            for c, name in enumerate(layout.names)}


def category_counts(spec: SynthDatasetSpec, start: int, stop: int) -> dict[str, int]:
    """Number of samples of each category among global indices [start, stop) (O(segments x categories))."""
    segs = segments(spec)
    out = {name: 0 for seg in segs for name in seg.layout.names}
    for seg in segs:
        for name, n in _segment_counts(seg, start, stop).items():
            out[name] = out.get(name, 0) + n
    return out


def segment_targets(spec: SynthDatasetSpec) -> list[dict[str, Any]]:
    """Per schedule segment: its shards ``[fromShard, toShard)`` and target samples per category."""
    total = shard_count(spec)
    out = []
    for seg in segments(spec):
        stop = spec.samples if seg.stop is None else min(seg.stop, spec.samples)
        to_shard = total if seg.stop is None else min(seg.stop // spec.shard_size, total)
        out.append({"fromShard": seg.from_shard, "toShard": max(to_shard, seg.from_shard),
                    "categories": _segment_counts(seg, seg.start, max(stop, seg.start)) or
                    {name: 0 for name in seg.layout.names}})
    return out


def category_targets(spec: SynthDatasetSpec) -> dict[str, int]:
    """Target samples per category for the whole dataset (sums to ``spec.samples``)."""
    return category_counts(spec, 0, spec.samples)


# --------------------------------------------------------------------------- views and frames per category


def _category_render(spec: Any, category: str | None) -> Any:
    if category is None:
        return None
    for c in getattr(spec, "categories", None) or ():
        if str(c.name) == str(category):
            return getattr(c, "render", None)
    return None


def effective_views(spec: Any, category: str | None = None) -> Any:
    """``render.views`` of a sample of ``category``: ``categories[].render.views`` where that category
    sets it, else ``spec.render.views`` (None for a spec without one). Every reader asks this."""
    own = _category_render(spec, category)
    if own is not None and own.views is not None:
        return own.views
    return getattr(getattr(spec, "render", None), "views", None)


def effective_frames(spec: Any, category: str | None = None) -> Any:
    """``render.frames`` of a sample of ``category`` (``categories[].render.frames``, else the spec's)."""
    own = _category_render(spec, category)
    if own is not None and own.frames is not None:
        return own.frames
    return getattr(getattr(spec, "render", None), "frames", None)


def spec_for_category(spec: SynthDatasetSpec, category: str) -> SynthDatasetSpec:
    """``spec`` with ``render.views`` / ``render.frames`` replaced by ``category``'s effective ones
    (the renderer renders each sample with it); ``spec`` itself when the category overrides nothing."""
    own = _category_render(spec, category)
    if own is None or (own.views is None and own.frames is None):
        return spec
    render = spec.render.model_copy(update={"views": effective_views(spec, category),
                                            "frames": effective_frames(spec, category)})
    return spec.model_copy(update={"render": render})


def render_mix(spec: Any) -> list[tuple[float, str | None]]:
    """(share of the dataset's samples, category) for planning views/frames: ``[(1.0, None)]`` when no
    category has its own ``render``, else every category with samples and its share of the targets."""
    if not any(getattr(c, "render", None) is not None for c in getattr(spec, "categories", None) or ()):
        return [(1.0, None)]
    targets = category_targets(spec)
    total = sum(targets.values()) or 1
    return [(n / total, name) for name, n in sorted(targets.items()) if n > 0]


# --------------------------------------------------------------------------- shards


def shard_count(spec: SynthDatasetSpec) -> int:
    """Number of shards: the last one may be short."""
    return -(-spec.samples // spec.shard_size)


def shard_range(spec: SynthDatasetSpec, shard: int) -> range:
    """Global sample indices of a shard."""
    total = shard_count(spec)
    if not 0 <= shard < total:
        raise IndexError(f"shard {shard} out of range: the dataset has {total} shards (0..{total - 1})")
    start = shard * spec.shard_size
    return range(start, min(start + spec.shard_size, spec.samples))


def shard_of(spec: SynthDatasetSpec, index: int) -> int:
    """The shard that holds a global sample index."""
    if not 0 <= index < spec.samples:
        raise IndexError(f"sample index {index} out of range 0..{spec.samples - 1}")
    return index // spec.shard_size


def sample_key(index: int) -> str:
    """The WebDataset key of a sample: unique across the dataset, no dots."""
    return f"{index:012d}"


def resolution_of(spec: SynthDatasetSpec, seed: int) -> tuple[int, int]:
    """The resolution tier of a sample, chosen deterministically by the tiers' fractions."""
    tiers = spec.render.resolutions
    total = sum(t.fraction for t in tiers)
    cumulative: list[float] = []
    acc = 0.0
    for t in tiers:
        acc += t.fraction / total
        cumulative.append(acc)
    i = min(bisect_right(cumulative, unit_hash(seed, "resolution")), len(tiers) - 1)
    return tiers[i].width, tiers[i].height


# --------------------------------------------------------------------------- batches


@dataclass(frozen=True)
class BatchPlan:
    """A window of shards that one RenderBatch renders."""

    index: int
    shard_start: int
    shard_count: int


def shards_per_batch(spec: SynthDatasetSpec) -> int:
    """Shards per RenderBatch: the spec's value, else enough to keep one pod busy for a while.

    A batch is one Indexed Job; more shards per batch means fewer objects and API calls per
    shard, fewer means finer-grained retries. The default keeps ``workers.max`` pods busy with
    at most ``workers.max`` live batches while bounding one batch to 1000 Job indexes, and gives
    a batch at least ``workers.max`` shards: the operator's window holds at most 32 live batches
    (``SYNTH_OPERATOR_MAX_LIVE_BATCHES``) and ``ceil(workers.max / per) + 1`` of them, so smaller
    batches cap the fleet below ``workers.max`` (on 1,000 kwok nodes, 3 shards per batch kept at
    most 96 pods running; benchmarks/bench_fleet.py, docs/fleet.md), and a batch draining its
    long-tail pods leaves the next one enough shards for every worker.
    """
    if spec.shards_per_batch:
        return spec.shards_per_batch
    total = shard_count(spec)
    per = max(-(-total // max(1, spec.workers.max * 4)), spec.workers.max)
    return max(1, min(per, 1000, total))


def batch_count(spec: SynthDatasetSpec) -> int:
    return -(-shard_count(spec) // shards_per_batch(spec))


def batch_plan(index: int, *, shards_per_batch: int, total_shards: int) -> BatchPlan:
    """The shards of the batch with a given index: batches tile the shards in order, the last may
    be short. ``shards_per_batch`` is the tiling the dataset was planned with (``status.plan``)."""
    start = index * shards_per_batch
    if not 0 <= start < total_shards:
        raise IndexError(f"batch {index} out of range: the dataset has "
                         f"{-(-total_shards // shards_per_batch)} batches")
    return BatchPlan(index=index, shard_start=start, shard_count=min(shards_per_batch, total_shards - start))


# --------------------------------------------------------------------------- the index step (plan, simulate)

INDEX_PART_BYTES_PER_SAMPLE = 2_000.0
"""Bytes of a sample's row in an index part (zstd; the built-in scenes' ~19 KB sample JSON inside),
measured on shards the worker committed (``tests/dataindex``); ``benchmarks/bench_index.py`` prints it."""
INDEX_JSONL_BYTES_PER_SAMPLE = 20_000.0
"""Bytes of a sample's line in ``metadata.jsonl`` (uncompressed JSON), written up to ``INDEX_SINGLE_FILE_MAX``."""
INDEX_SINGLE_FILE_MAX = 1_000_000
"""Samples up to which the index is one ``metadata.parquet`` (mirrors ``parallel_synth.dataset.index``)."""
INDEX_SAMPLES_PER_CPU_SECOND = 1_500.0
"""Samples the index step summarises per CPU-second (JSON parse, coverage, counts), measured on one core."""
INDEX_READ_BYTES_PER_SECOND = 1e9
"""Bandwidth the index pod reads the bucket at (the figure the old path's 29 days was stated at)."""


@dataclass(frozen=True)
class IndexStep:
    """The index step at the end of a run: bytes it reads, time, and the storage of the index itself."""

    samples: int
    bytes_read: float
    seconds: float
    bytes_read_old: float
    """What the old path (every shard tar streamed, images included) read."""
    seconds_old: float
    bandwidth: float
    samples_per_second: float
    storage_bytes: float
    """Parts plus the finished index (``metadata.parquet``/``jsonl`` or ``compacted/``)."""
    layout: str

    def to_json(self) -> dict[str, Any]:
        return {"samples": self.samples, "bytesRead": self.bytes_read,
                "bytesReadPerSample": self.bytes_read / self.samples if self.samples else 0.0,
                "seconds": self.seconds, "bytesReadOldPath": self.bytes_read_old, "secondsOldPath": self.seconds_old,
                "bandwidthBytesPerSecond": self.bandwidth, "samplesPerSecond": self.samples_per_second,
                "storageBytes": self.storage_bytes, "layout": self.layout}


def index_step(spec: SynthDatasetSpec, *, bytes_per_sample: float, bandwidth: float = INDEX_READ_BYTES_PER_SECOND,
               samples_per_second: float = INDEX_SAMPLES_PER_CPU_SECOND,
               part_bytes: float = INDEX_PART_BYTES_PER_SAMPLE) -> IndexStep:
    """The index step of ``spec``'s dataset (pure): reads manifests and parts, never a tar.

    Its time is the slower of reading and summarising; the old path read every tar
    (``bytes_per_sample`` each) and summarised the same rows.
    """
    n = spec.samples
    manifests = shard_count(spec) * 4_000.0 + n * 25.0  # a manifest: ~4 KB plus a score and a time per sample
    read = manifests + n * part_bytes
    read_old = manifests + n * bytes_per_sample
    cpu = n / samples_per_second
    single = n <= INDEX_SINGLE_FILE_MAX
    storage = n * part_bytes * 2 + (n * INDEX_JSONL_BYTES_PER_SAMPLE if single and any(
        str(f) == "jsonl" for f in spec.output.index_formats) else 0.0)
    return IndexStep(samples=n, bytes_read=read, seconds=max(read / bandwidth, cpu), bytes_read_old=read_old,
                     seconds_old=max(read_old / bandwidth, cpu), bandwidth=bandwidth,
                     samples_per_second=samples_per_second, storage_bytes=storage,
                     layout="index/metadata.parquet" if single else "index/compacted/ (files of ~1M rows)")
