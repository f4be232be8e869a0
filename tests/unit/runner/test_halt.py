"""Halt conditions judged on live series: armed only after the first fault, windowed, counted."""

from __future__ import annotations

from resildrill.drill.model import HaltCondition
from resildrill.load.driver import LoadBucket, apply_buckets
from resildrill.observe.histogram import LatencyHistogram
from resildrill.observe.metrics import TimeSeries
from resildrill.runner.halt import check_halts


def series_with(failing_from_s: float, until_s: float, name: str = "web") -> TimeSeries:
    """One sample per 100 ms bucket from 0 to ``until_s``, failing from ``failing_from_s``."""
    ts = TimeSeries()
    s = ts.source(name, "probe", "clinical")
    t = 0.0
    while t < until_s - 1e-9:
        s.add(t + 0.01, ok=t < failing_from_s, latency_s=0.01)
        t = round(t + 0.1, 3)
    return ts


def cond(**kw: object) -> HaltCondition:
    return HaltCondition.model_validate(kw)


def test_not_armed_before_first_fault() -> None:
    """No fault requested yet: even a failing probe does not halt."""
    ts = series_with(0.0, 3.0)
    assert check_halts([cond(probe="web", when="error_rate > 0.5")], ts, None) is None


def test_error_rate_over_window_halts() -> None:
    """Error rate above the limit over the whole 'for' window halts, naming the condition."""
    ts = series_with(2.0, 3.0)
    c = cond(probe="web", when="error_rate > 0.5", **{"for": "500ms"})
    why = check_halts([c], ts, armed_at_s=2.0)
    assert why is not None and "error_rate > 0.5" in why


def test_window_must_lie_after_arming() -> None:
    """A window reaching back before the first fault is not judged yet."""
    ts = series_with(2.0, 2.3)
    c = cond(probe="web", when="error_rate > 0.5", **{"for": "1s"})
    assert check_halts([c], ts, armed_at_s=2.0) is None


def test_short_blip_does_not_halt() -> None:
    """One failing bucket in a 1 s window stays under a 50% error rate."""
    ts = series_with(10.0, 3.0)
    ts.sources["web"].failures[25] = 1
    c = cond(probe="web", when="error_rate > 0.5", **{"for": "1s"})
    assert check_halts([c], ts, armed_at_s=1.0) is None


def action_buckets(failed_at: list[int], n: int = 30) -> list[LoadBucket]:
    """drug_round load: every bucket one action of 4 requests; actions at ``failed_at``
    failed (one of their requests failed)."""
    out = []
    for i in range(n):
        hist = LatencyHistogram()
        for _ in range(4):
            hist.add(0.05)
        failed = i in failed_at
        out.append(
            LoadBucket("drug_round", i, 4, int(failed), hist, actions=1, actions_failed=int(failed))
        )
    return out


def test_failed_actions_counted_since_first_fault() -> None:
    """More than N failed clinical actions since the first fault halt; earlier ones do not
    count; the reason says actions."""
    ts = TimeSeries()
    apply_buckets(ts, action_buckets([0, 1, 2, 3, 4, 26, 27, 28, 29]))
    c = cond(workflow="drug_round", failed_actions=3)
    why = check_halts([c], ts, armed_at_s=2.0)
    assert why == "halt: drug_round: failed_actions > 3 (4 actions failed since the first fault)"
    c4 = cond(workflow="drug_round", failed_actions=4)
    assert check_halts([c4], ts, armed_at_s=2.0) is None


def test_failed_actions_are_actions_not_requests() -> None:
    """Many failed requests in one action are one failed action, and failed requests the
    load did not count as a failed action are none: the halt counts actions."""
    ts = TimeSeries()
    apply_buckets(ts, action_buckets([25]))
    hist = LatencyHistogram()
    hist.add(0.05)
    # Bucket 26: 10 failed requests, all inside one failed action; bucket 27: 10 failed
    # requests and no failed action.
    apply_buckets(
        ts,
        [
            LoadBucket("drug_round", 26, 10, 10, hist, actions=0, actions_failed=0),
            LoadBucket("drug_round", 26, 0, 0, hist, actions=1, actions_failed=1),
            LoadBucket("drug_round", 27, 10, 10, hist),
        ],
    )
    wf = ts.sources["drug_round"]
    assert sum(wf.failures[20:]) == 21  # requests
    c = cond(workflow="drug_round", failed_actions=2)
    assert check_halts([c], ts, armed_at_s=2.0) is None  # 2 failed actions, not 21
    apply_buckets(ts, [LoadBucket("drug_round", 28, 1, 1, hist, actions=1, actions_failed=1)])
    assert check_halts([c], ts, armed_at_s=2.0) is not None


def test_failed_actions_of_a_series_without_actions_never_halt() -> None:
    """A workflow whose load records no actions (a user's locustfile) has none to count."""
    ts = TimeSeries()
    wf = ts.source("clerk", "workflow")
    for i in range(30):
        wf.add(i * 0.1, ok=False, latency_s=0.05)
    assert check_halts([cond(workflow="clerk", failed_actions=0)], ts, armed_at_s=0.0) is None
