"""Measured throughput: samples/day and per-worker rate over a sliding window.

Shards commit in bursts: with 1000-sample shards at 60 s per sample a pod commits once every
~17 hours, and a fleet started at once commits nothing for 17 hours and then everything within
minutes. A rate computed as "samples committed in the last hour" swings between zero and
several times the truth. Two measures are kept apart here:

* ``samples_per_day``: what the user sees (status, metrics): the GPU time spent over the
  display window (6 h, or since the first observation) times the measured samples per
  GPU-second. Counting commits in the window instead would swing between zero and several
  times the truth as waves of shards commit; GPU time flows smoothly.
* ``per_worker_per_day``: committed samples divided by the GPU time that was *spent on
  finished pods* (committed or wasted) over the evidence horizon (24 h by default: a fleet
  started at once commits its fast pods first and its slow ones last, and a shorter span
  would mistake that for a change of rate), shrunk towards the prior with a
  pseudo-count of ``prior_weight_seconds`` GPU-seconds. Pods still rendering are not in the
  denominator, so bursts do not bias it; the prior (``spec.estimates.gpuSecondsPerSample``)
  dominates until real shards have committed, then fades. The autoscaler sizes the fleet with
  this rate, because it does not depend on how many workers happened to run.

The window is a small immutable tuple of cumulative observations ``(t, samples, gpu_seconds)``
taken at each autoscaler tick; differences of cumulative counters make it robust to missed
ticks and operator restarts (a restart just starts a new window).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class Observation:
    """Cumulative counters of a dataset at one instant."""

    t: float
    """Seconds since the epoch (or any fixed origin; only differences are used)."""
    samples: int
    """Samples in committed shards, cumulative."""
    gpu_seconds: float
    """GPU-seconds behind settled shards (committed or failed, all their attempts), cumulative."""
    busy_seconds: float | None = None
    """GPU-seconds of all pods including running ones, cumulative (None: same as gpu_seconds)."""

    @property
    def busy(self) -> float:
        return self.gpu_seconds if self.busy_seconds is None else self.busy_seconds


@dataclass(frozen=True)
class RateWindow:
    """A bounded, immutable history of observations."""

    points: tuple[Observation, ...] = ()
    window_seconds: float = 6 * 3600.0
    """Span used for the measured samples/day."""
    evidence_seconds: float = SECONDS_PER_DAY
    """Look-back of the per-worker rate (longer than the display window: less biased)."""
    resolution_seconds: float = 900.0
    """Points closer than this to their predecessor replace the newest one (bounds the size)."""
    max_points: int = 256
    """Hard bound on memory (and on the status field that persists the window)."""

    def observe(self, obs: Observation) -> RateWindow:
        """A new window with ``obs`` appended and points older than needed dropped.

        One point older than the horizon is kept as the anchor of the differences.
        """
        pts = [p for p in self.points if p.t < obs.t]
        if pts and obs.samples < pts[-1].samples:  # counters went back (status reset): start over
            pts = []
        # kept points are at least resolution_seconds apart; in between, the window does not
        # change (it lives in status: no write per tick) and measure() takes the current
        # observation separately
        if pts and obs.t - pts[-1].t < self.resolution_seconds:
            return self if len(pts) == len(self.points) else replace(self, points=tuple(pts))
        pts.append(obs)
        horizon = obs.t - max(self.window_seconds, self.evidence_seconds)
        first = 0
        while first + 1 < len(pts) and pts[first + 1].t <= horizon:
            first += 1
        pts = pts[first:][-self.max_points :]
        return replace(self, points=tuple(pts))


@dataclass(frozen=True)
class Throughput:
    """What the window says."""

    samples_per_day: float | None
    """Committed samples per day over the window; None before the first commit."""
    per_worker_per_day: float
    """Samples per day one worker (one pod) delivers: measured, shrunk towards the prior."""
    measured: bool
    """True once committed samples carry more weight than the prior."""
    span_seconds: float = 0.0
    details: dict[str, float] = field(default_factory=dict)


def prior_per_worker_per_day(gpu_seconds_per_sample: float, gpus_per_worker: int = 1) -> float:
    """Samples/day of one pod before measurement: 86400 x GPUs per pod / GPU-seconds per sample.

    A sample costs ``gpu_seconds_per_sample`` GPU-seconds however many GPUs a pod has.
    """
    return SECONDS_PER_DAY * max(1, gpus_per_worker) / gpu_seconds_per_sample


def _anchor(points: tuple[Observation, ...], t: float) -> Observation:
    """The newest point at or before ``t`` (or the oldest one)."""
    best = points[0]
    for p in points:
        if p.t <= t:
            best = p
        else:
            break
    return best


def measure(
    window: RateWindow,
    *,
    current: Observation | None = None,
    prior_gpu_seconds_per_sample: float,
    gpus_per_worker: int = 1,
    prior_weight_seconds: float | None = None,
) -> Throughput:
    """Samples/day and per-worker rate from a window.

    ``current`` is the observation of this instant when the window did not keep it.
    ``prior_weight_seconds`` is how many GPU-seconds of evidence the prior is worth (default:
    the GPU time of 1000 samples at the prior rate, about one shard).
    """
    gpus = max(1, gpus_per_worker)
    prior_rate = 1.0 / prior_gpu_seconds_per_sample  # samples per GPU-second
    weight = prior_weight_seconds if prior_weight_seconds is not None else 1000 * prior_gpu_seconds_per_sample
    if not window.points:
        return Throughput(None, prior_rate * gpus * SECONDS_PER_DAY, False)
    last = window.points[-1]
    if current is not None and current.t >= last.t:
        last = current

    # per-worker rate: over the whole evidence horizon (24 h by default). A shorter span is
    # biased when a fleet started together: its fast pods commit first and its slow pods last.
    anchor = window.points[0]
    d_samples = last.samples - anchor.samples
    d_gpu = last.gpu_seconds - anchor.gpu_seconds
    rate = (d_samples + prior_rate * weight) / (d_gpu + weight)  # samples per GPU-second

    # samples/day over the display window: the GPU time spent in it (running pods included,
    # so it does not jump when a wave of shards commits) times the measured samples per
    # GPU-second. Shown once something has committed.
    start = _anchor(window.points, last.t - window.window_seconds)
    span = last.t - start.t
    samples_per_day = None
    if last.samples > 0 and span > 0:
        samples_per_day = (last.busy - start.busy) / span * rate * SECONDS_PER_DAY
    return Throughput(
        samples_per_day=samples_per_day,
        per_worker_per_day=rate * gpus * SECONDS_PER_DAY,
        measured=d_gpu > weight,
        span_seconds=span,
        details={"evidenceSamples": float(d_samples), "evidenceGpuSeconds": d_gpu},
    )


def window_to_status(window: RateWindow) -> list[list[float]]:
    """The window's points as ``[[t, samples, gpuSeconds, busySeconds], ...]`` (in status)."""
    return [[round(p.t, 1), p.samples, round(p.gpu_seconds, 1), round(p.busy, 1)] for p in window.points]


def window_from_status(data: object, *, template: RateWindow | None = None) -> RateWindow:
    """A window from its status form; malformed entries are skipped (a fresh window at worst)."""
    base = template or RateWindow()
    pts: list[Observation] = []
    if isinstance(data, list):
        for item in data:
            try:
                t, n, g, *busy = item
                pts.append(Observation(float(t), int(n), float(g), float(busy[0]) if busy else None))
            except (TypeError, ValueError, IndexError):
                continue
    pts.sort(key=lambda p: p.t)
    return replace(base, points=tuple(pts[-base.max_points :]))
