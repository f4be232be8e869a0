"""Halt conditions (``abort_when``), checked on the live series at every runner tick.

Deliberately simple and conservative, because a halt protects clinicians: a condition on
a metric is judged over the trailing ``for`` window ending at the newest bucket that has
samples; ``failed_actions`` counts a workflow's failed clinical *actions* (not requests:
an action is one task of a persona, failed when any of its requests failed) started since
the first injection, from the per-bucket ``actions_failed`` the load driver keeps on each
workflow's series (``resildrill.load.driver.WorkflowSeries``). Halts are armed only once
the first fault has been requested.
"""

from __future__ import annotations

from resildrill.drill.model import HaltCondition
from resildrill.observe.histogram import LatencyHistogram
from resildrill.observe.metrics import RESOLUTION_S, TimeSeries, bucket_index


def _metric(metric: str, count: int, failures: int, hist: LatencyHistogram) -> float | None:
    if count == 0:
        return None
    if metric == "success_rate":
        return 1 - failures / count
    if metric == "error_rate":
        return failures / count
    q = {"p50": 0.5, "p95": 0.95, "p99": 0.99}[metric]
    return hist.quantile(q)


def check_halts(
    conditions: list[HaltCondition], series: TimeSeries, armed_at_s: float | None
) -> str | None:
    """The first condition that holds, as text, or None."""
    if armed_at_s is None:
        return None
    first = bucket_index(armed_at_s)
    for cond in conditions:
        source = series.sources.get(cond.probe or cond.workflow or "")
        if source is None:
            continue
        if cond.failed_actions is not None:
            # A workflow series without actions (a locustfile that records none) has none.
            actions_failed: list[int] = getattr(source, "actions_failed", [])
            failed = sum(actions_failed[first:])
            if failed > cond.failed_actions:
                return f"halt: {cond.label} ({failed} actions failed since the first fault)"
            continue
        if not source.counts:
            continue
        assert cond.when is not None
        last = max((i for i, n in enumerate(source.counts) if n), default=-1)
        width = max(1, round(cond.for_ / RESOLUTION_S))
        start = last - width + 1
        if start < first:
            continue  # the window must lie wholly after the first injection
        count = sum(source.counts[start : last + 1])
        failures = sum(source.failures[start : last + 1])
        hist = LatencyHistogram.merged(source.latency[start : last + 1])
        value = _metric(cond.when.metric, count, failures, hist)
        if value is not None and cond.when.holds(value):
            return f"halt: {cond.label} (observed {value:.3g} over {cond.for_:g}s)"
    return None
