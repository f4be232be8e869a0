"""Recovery, defined: SLO breaches, outage, degraded time and recovery per fault.

Pure functions over 100 ms buckets (see :mod:`resildrill.observe.metrics`): no I/O, no
clocks, no globals, and no input is ever mutated. Times are seconds from the run's
``monotonic_t0``; bucket ``i`` covers ``[i*resolution_s, (i+1)*resolution_s)``. Lists of
flags are indexed by bucket; an index past the end of a list reads as "not flagged".

SLO judgement (:func:`slo_breaches`)
    For bucket ``i`` the trailing window is buckets ``(i - window_buckets, i]`` (clipped at
    0). Over that window ``success_rate = 1 - failures/count``, ``error_rate =
    failures/count`` and ``pNN`` is the nearest-rank quantile of the merged latency
    histograms. A window holding fewer than ``min_samples`` samples (at least 1) is not
    judged: it keeps the previous bucket's verdict (not breached before the first judgement).
    A relative SLO (``p95 <= 2x baseline``) is compared with ``baseline``; without a
    baseline it cannot be judged and is never breached.

Dating back ("a change is dated back to the first bucket that caused it")
    A bucket is *bad* for an SLO when it has samples of its own and they count against it:

    * rate metrics: the bucket has a failure (for ``success_rate >=/>`` and
      ``error_rate <=/<``; for the inverted directions, a success);
    * latency metrics: the bucket's *own* quantile (from its own histogram) violates the
      limit. This rather than "any sample over the limit", so one stray slow request in a
      busy healthy bucket does not drag an onset back by up to a window; a window can only
      breach if at least one of its buckets is bad this way, so nothing is lost.

    A run of raw window verdicts that starts at bucket ``i`` is dated back to the earliest
    bad bucket in ``i``'s window (no bad bucket: ``i`` itself). A run that ends at bucket
    ``k`` (the window holds again) ends at the first bucket after the run's last bad bucket
    that has samples of its own (capped at ``k``): the buckets between the last bad sample
    and the next sample are unknown and keep the bad state, exactly as :func:`outage_flags`
    lets empty buckets inherit a probe's state (so an outage is always inside a breach of
    the clinical probe's ``success_rate >= 1.0``). A run still open at the last bucket stays
    breached to the end. Runs that meet after dating back merge.

Outage (:func:`outage_flags`)
    A clinical probe is *down* in a bucket whose samples all failed and *up* in one with a
    success; a bucket without samples of that probe inherits its previous state (up before
    its first sample). A bucket is outage when any clinical probe is down.

Degraded (:func:`degraded_flags`)
    Any SLO breached in the bucket. Steady state (:func:`steady_state_holds`) holds when no
    bucket of ``[start, end)`` is degraded.

Per fault (:func:`analyse_fault`)
    The watch range is ``[bucket(inject_requested_at_s), bucket(watch_end_s))``, clipped to
    the flags given (buckets that were never observed are never claimed healthy).

    * ``time_to_detect_s``: start of the first degraded bucket in the range minus
      ``inject_requested_at_s``, at least 0 (already degraded at the injection bucket: 0).
      No degraded bucket in the range: ``None``, and the fault counts as recovered with
      ``time_to_recover_s == 0``, ``recovered_at_s`` ``None`` and no relapses.
    * The *counted-from* time is ``reverted_at_s`` when ``counted_from == "revert"`` and the
      fault was reverted, else ``injected_at_s``, else (the injection failed)
      ``inject_requested_at_s``.
    * ``recovered_at_s``: start of the first bucket ``b >= max(first degraded bucket,
      bucket(counted-from))`` such that ``[b, b + stability_buckets)`` lies in the watch
      range and holds no degraded bucket. When the watch was cut short by a later fault
      (``truncated_by``), a healthy run that reaches the watch end counts even if shorter
      than ``stability_buckets``: the next fault, not the system, ended the evidence. Cut
      short by the end of the run instead, it does not ("the recovery window ends first"):
      ``recovered`` is false and the recovery times are ``None``.
    * ``time_to_recover_s = recovered_at_s - counted-from``, at least 0. Bucket starts are
      exact multiples of the resolution; the difference keeps millisecond precision
      (rounded to 3 decimals) rather than being rounded again to 0.1 s, which would add up
      to 50 ms of error on top of the bucketing.
    * ``relapses``: degraded runs that start after ``recovered_at_s`` inside the watch range.
    * ``outage_s`` / ``degraded_s``: flagged buckets in the watch range × resolution.

Summary (:func:`summarise`)
    Outage and degraded buckets of ``[start, end)`` each counted once, and
    ``availability = 1 - outage_s / ((end - start) × resolution)`` (1.0 for an empty range).

Every reported time is rounded to 3 decimals; availability to 6.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from resildrill.drill.model import SLOExpectation
from resildrill.observe.histogram import LatencyHistogram
from resildrill.observe.metrics import RESOLUTION_S, SourceSeries

__all__ = [
    "FaultWindow",
    "RecoveryResult",
    "Summary",
    "analyse_fault",
    "baseline_value",
    "bucket_of",
    "counted_from_s",
    "degraded_flags",
    "outage_flags",
    "slo_breaches",
    "steady_state_holds",
    "summarise",
]

#: Quantile of each latency metric.
QUANTILES: dict[str, float] = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
_RATE_METRICS = ("success_rate", "error_rate")


@dataclass(frozen=True)
class FaultWindow:
    """What the runner knows about one fault's timing, in seconds from ``monotonic_t0``."""

    id: str
    kind: str
    inject_requested_at_s: float
    #: None: the injection failed.
    injected_at_s: float | None
    #: When the drill ended the fault; None: never, or the system must heal itself.
    reverted_at_s: float | None
    #: Recovery is counted from the revert, or (self-healing) from the injection.
    counted_from: Literal["revert", "inject"]
    #: The next injection's request time, or the end of the run.
    watch_end_s: float
    #: Id of the fault whose injection ended this watch, if any.
    truncated_by: str | None


@dataclass(frozen=True)
class RecoveryResult:
    """The ``recovery`` object of one fault in report.json (plus ``recovered_at_s``)."""

    time_to_detect_s: float | None
    time_to_recover_s: float | None
    recovered: bool
    recovered_at_s: float | None
    outage_s: float
    degraded_s: float
    relapses: int
    truncated_by: str | None


@dataclass(frozen=True)
class Summary:
    """The run's ``summary``: each bucket counted once."""

    outage_s: float
    degraded_s: float
    availability: float


# ---------------------------------------------------------------------------------------
# helpers


def bucket_of(at_s: float, resolution_s: float = RESOLUTION_S) -> int:
    """Bucket holding a time (floored, as :func:`resildrill.observe.metrics.bucket_index`)."""
    return int((at_s + 1e-9) // resolution_s)


def _flag(flags: Sequence[bool], i: int) -> bool:
    return 0 <= i < len(flags) and bool(flags[i])


def _at(values: Sequence[int], i: int) -> int:
    return values[i] if 0 <= i < len(values) else 0


def _hist(series: SourceSeries, i: int) -> LatencyHistogram | None:
    return series.latency[i] if 0 <= i < len(series.latency) else None


def _seconds(n_buckets: int, resolution_s: float) -> float:
    return round(n_buckets * resolution_s, 3)


def _rate_counts_failures(slo: SLOExpectation) -> bool:
    """Whether failures (rather than successes) count against a rate SLO."""
    if slo.metric == "success_rate":
        return slo.op in (">=", ">")
    return slo.op in ("<=", "<")


def _observe(
    slo: SLOExpectation, count: int, failures: int, bins: dict[int, int] | None
) -> float | None:
    """The SLO's metric over an aggregate, or None when it cannot be computed."""
    if slo.metric == "success_rate":
        return 1.0 - failures / count if count else None
    if slo.metric == "error_rate":
        return failures / count if count else None
    if not bins:
        return None
    return LatencyHistogram(bins).quantile(QUANTILES[slo.metric])


# ---------------------------------------------------------------------------------------
# SLO judgement


def slo_breaches(
    series: SourceSeries,
    slo: SLOExpectation,
    *,
    window_buckets: int,
    min_samples: int,
    n_buckets: int,
    baseline: float | None = None,
) -> list[bool]:
    """Per bucket, whether ``slo`` is breached on ``series`` (True = breached), dated back.

    See the module docstring for the window, ``min_samples`` and dating-back rules.
    """
    if n_buckets <= 0:
        return []
    if slo.metric not in _RATE_METRICS and slo.metric not in QUANTILES:
        raise ValueError(f"unknown SLO metric {slo.metric!r}")
    if slo.relative_to_baseline and baseline is None:
        return [False] * n_buckets
    w = max(1, window_buckets)
    need = max(1, min_samples)
    latency = slo.metric in QUANTILES

    raw: list[bool] = []
    bad: list[bool] = []
    has: list[bool] = []
    prev = False
    count = fails = 0
    bins: dict[int, int] = {}
    for i in range(n_buckets):
        c_i, f_i = _at(series.counts, i), _at(series.failures, i)
        count += c_i
        fails += f_i
        h_i = _hist(series, i) if latency else None
        if h_i is not None:
            for b, n in h_i.bins.items():
                bins[b] = bins.get(b, 0) + n
        old = i - w
        if old >= 0:
            count -= _at(series.counts, old)
            fails -= _at(series.failures, old)
            h_old = _hist(series, old) if latency else None
            if h_old is not None:
                for b, n in h_old.bins.items():
                    left = bins.get(b, 0) - n
                    if left > 0:
                        bins[b] = left
                    else:
                        bins.pop(b, None)
        if count >= need:
            observed = _observe(slo, count, fails, bins if latency else None)
            if observed is not None:
                prev = not slo.holds(observed, baseline)
        raw.append(prev)

        has.append(c_i > 0)
        if c_i <= 0:
            bad.append(False)
        elif latency:
            own = _observe(slo, c_i, f_i, dict(h_i.bins) if h_i is not None else None)
            bad.append(own is not None and not slo.holds(own, baseline))
        elif _rate_counts_failures(slo):
            bad.append(f_i > 0)
        else:
            bad.append(c_i - f_i > 0)
    return _date_back(raw, bad, has, w)


def _date_back(raw: list[bool], bad: list[bool], has: list[bool], w: int) -> list[bool]:
    """Move each run of raw window verdicts to the buckets that caused it."""
    n = len(raw)
    out = [False] * n
    i = 0
    while i < n:
        if not raw[i]:
            i += 1
            continue
        s = i
        while i < n and raw[i]:
            i += 1
        k = i  # raw run is [s, k)
        start = next((j for j in range(max(0, s - w + 1), s + 1) if bad[j]), s)
        end = k
        if k < n:
            last = next((j for j in range(k - 1, start - 1, -1) if bad[j]), None)
            if last is not None:
                end = next((m for m in range(last + 1, k + 1) if has[m]), k)
        for j in range(start, end):
            out[j] = True
    return out


def baseline_value(
    series: SourceSeries, metric: str, start_bucket: int, end_bucket: int
) -> float | None:
    """``metric`` measured over buckets ``[start_bucket, end_bucket)``; None without samples."""
    lo, hi = max(0, start_bucket), min(end_bucket, len(series.counts))
    count = sum(series.counts[lo:hi]) if hi > lo else 0
    if count <= 0:
        return None
    fails = sum(_at(series.failures, i) for i in range(lo, hi))
    if metric == "success_rate":
        return 1.0 - fails / count
    if metric == "error_rate":
        return fails / count
    if metric in QUANTILES:
        merged = LatencyHistogram.merged(_hist(series, i) for i in range(lo, hi))
        return merged.quantile(QUANTILES[metric])
    raise ValueError(f"unknown SLO metric {metric!r}")


# ---------------------------------------------------------------------------------------
# Outage, degraded, steady state


def outage_flags(clinical: list[SourceSeries], n_buckets: int) -> list[bool]:
    """Per bucket, whether any clinical probe is down (empty buckets inherit its state)."""
    out = [False] * max(0, n_buckets)
    for probe in clinical:
        down = False
        for i in range(len(out)):
            c = _at(probe.counts, i)
            if c > 0:
                down = _at(probe.failures, i) >= c
            if down:
                out[i] = True
    return out


def degraded_flags(breaches: list[list[bool]], n_buckets: int) -> list[bool]:
    """Per bucket, whether any SLO is breached."""
    return [any(_flag(b, i) for b in breaches) for i in range(max(0, n_buckets))]


def steady_state_holds(degraded: list[bool], start_bucket: int, end_bucket: int) -> bool:
    """Whether every SLO holds in every bucket of ``[start_bucket, end_bucket)``."""
    return not any(_flag(degraded, i) for i in range(max(0, start_bucket), end_bucket))


# ---------------------------------------------------------------------------------------
# Per fault and summary


def counted_from_s(window: FaultWindow) -> float:
    """The time a fault's recovery is counted from (see the module docstring)."""
    if window.counted_from == "revert" and window.reverted_at_s is not None:
        return window.reverted_at_s
    if window.injected_at_s is not None:
        return window.injected_at_s
    return window.inject_requested_at_s


def analyse_fault(
    window: FaultWindow,
    degraded: list[bool],
    outage: list[bool],
    *,
    stability_buckets: int,
    resolution_s: float = RESOLUTION_S,
) -> RecoveryResult:
    """Time to detect, time to recover, outage, degraded and relapses of one fault."""
    ws = max(0, bucket_of(window.inject_requested_at_s, resolution_s))
    we = max(ws, min(bucket_of(window.watch_end_s, resolution_s), len(degraded)))
    outage_s = _seconds(sum(_flag(outage, i) for i in range(ws, we)), resolution_s)
    degraded_s = _seconds(sum(_flag(degraded, i) for i in range(ws, we)), resolution_s)
    first = next((i for i in range(ws, we) if degraded[i]), None)
    if first is None:
        return RecoveryResult(
            time_to_detect_s=None,
            time_to_recover_s=0.0,
            recovered=True,
            recovered_at_s=None,
            outage_s=outage_s,
            degraded_s=degraded_s,
            relapses=0,
            truncated_by=window.truncated_by,
        )
    ttd = round(max(0.0, first * resolution_s - window.inject_requested_at_s), 3)
    since = counted_from_s(window)
    stable = max(1, stability_buckets)
    run_start: int | None = None
    found: int | None = None
    for b in range(max(first, bucket_of(since, resolution_s)), we):
        if degraded[b]:
            run_start = None
            continue
        if run_start is None:
            run_start = b
        if b - run_start + 1 >= stable:
            found = run_start
            break
    if found is None and window.truncated_by is not None:
        found = run_start  # a healthy run reaching the watch end cut by the next fault
    if found is None:
        return RecoveryResult(
            time_to_detect_s=ttd,
            time_to_recover_s=None,
            recovered=False,
            recovered_at_s=None,
            outage_s=outage_s,
            degraded_s=degraded_s,
            relapses=0,
            truncated_by=window.truncated_by,
        )
    recovered_at = found * resolution_s
    relapses = sum(1 for b in range(found + 1, we) if degraded[b] and not degraded[b - 1])
    return RecoveryResult(
        time_to_detect_s=ttd,
        time_to_recover_s=round(max(0.0, recovered_at - since), 3),
        recovered=True,
        recovered_at_s=round(recovered_at, 3),
        outage_s=outage_s,
        degraded_s=degraded_s,
        relapses=relapses,
        truncated_by=window.truncated_by,
    )


def summarise(
    outage: list[bool],
    degraded: list[bool],
    start_bucket: int,
    end_bucket: int,
    resolution_s: float = RESOLUTION_S,
) -> Summary:
    """Outage, degraded time and availability over ``[start_bucket, end_bucket)``."""
    lo = max(0, start_bucket)
    span = max(0, end_bucket - lo)
    n_out = sum(_flag(outage, i) for i in range(lo, lo + span))
    n_deg = sum(_flag(degraded, i) for i in range(lo, lo + span))
    availability = 1.0 if span == 0 else round(1.0 - n_out / span, 6)
    return Summary(
        outage_s=_seconds(n_out, resolution_s),
        degraded_s=_seconds(n_deg, resolution_s),
        availability=availability,
    )
