"""Halt conditions judged on live series: armed only after the first fault, windowed, counted."""

from __future__ import annotations

from resildrill.drill.model import HaltCondition
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


def test_failed_actions_counted_since_first_fault() -> None:
    """More than N workflow failures since the first fault halt; earlier failures do not count."""
    ts = TimeSeries()
    wf = ts.source("drug_round", "workflow")
    for i in range(30):
        wf.add(i * 0.1, ok=not (i < 5 or i >= 26), latency_s=0.05)
    c = cond(workflow="drug_round", failed_actions=3)
    assert check_halts([c], ts, armed_at_s=2.0) is not None
    c4 = cond(workflow="drug_round", failed_actions=4)
    assert check_halts([c4], ts, armed_at_s=2.0) is None
