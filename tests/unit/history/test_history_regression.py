"""The regression gate's pure comparison: median of the last runs, margin, floor, history size."""

from __future__ import annotations

import pytest
from tests.unit.history.reports import day, make_report

from resildrill.drill.model import Gates, RegressionGate
from resildrill.history.figures import run_figures
from resildrill.history.regression import check_regression, regression_gates


def test_within_margin_passes() -> None:
    """A value 20% above the median passes a 20% margin (limits are inclusive)."""
    check = check_regression("time_to_recover", 6.0, [5.0, 4.0, 6.0], margin=0.2, min_runs=3)
    assert check.median == 5.0
    assert check.limit == pytest.approx(6.0)
    assert check.passed


def test_worse_than_margin_fails_and_says_why() -> None:
    """A value more than the margin above the median fails, and the reason gives both."""
    check = check_regression("time_to_recover", 6.5, [5.0, 4.0, 6.0], margin=0.2, min_runs=3)
    assert not check.passed
    assert "worse than the limit 6 s" in check.reason
    assert "median 5 s of the last 3 run(s)" in check.reason


def test_median_ignores_one_outlier() -> None:
    """One slow previous run does not loosen the limit, as a mean would."""
    check = check_regression("outage", 2.5, [2.0, 2.0, 30.0], margin=0.2, min_runs=3)
    assert check.median == 2.0
    assert not check.passed


def test_min_change_absorbs_small_absolute_changes() -> None:
    """0.1 s over a 0.3 s median is +33% but within a 0.2 s floor: not a regression."""
    check = check_regression(
        "time_to_recover", 0.4, [0.3, 0.3, 0.3], margin=0.2, min_runs=3, min_change=0.2
    )
    assert check.limit == pytest.approx(0.5)
    assert check.passed


def test_not_enough_history_passes_and_says_so() -> None:
    """With fewer previous values than min_runs the gate passes with a reason."""
    check = check_regression("outage", 100.0, [1.0, None], margin=0.2, min_runs=2)
    assert check.passed
    assert check.limit is None
    assert "not enough history: 1 previous run(s)" in check.reason


def test_not_recovered_fails_time_to_recover() -> None:
    """A fault that did not recover (no time to recover) is a regression of that figure."""
    check = check_regression(
        "time_to_recover", None, [1.0, 1.0, 1.0], margin=0.2, min_runs=3, none_is_worst=True
    )
    assert not check.passed
    assert "did not recover" in check.reason


def test_nothing_detected_passes_time_to_detect() -> None:
    """No breach this time (no time to detect) is not worse."""
    check = check_regression("time_to_detect", None, [0.2, 0.2, 0.2], margin=0.2, min_runs=3)
    assert check.passed


def test_availability_is_judged_on_unavailability() -> None:
    """99.0% after a median of 99.5% doubles the unavailability: fails a 20% margin."""
    check = check_regression(
        "availability", 0.990, [0.995] * 3, margin=0.2, min_runs=3, higher_is_better=True
    )
    assert check.limit == pytest.approx(0.994)
    assert not check.passed
    ok = check_regression(
        "availability", 0.9945, [0.995] * 3, margin=0.2, min_runs=3, higher_is_better=True
    )
    assert ok.passed


def test_regression_gates_use_last_n_completed_runs() -> None:
    """Only the newest last_n completed runs count; aborted and partial runs are skipped."""
    spec = RegressionGate(metrics=["outage", "time_to_recover"], last_n=3, min_runs=3)
    previous = [
        run_figures(make_report("r9", started_at=day(9), outage=50.0, outcome="aborted")),
        run_figures(make_report("r8", started_at=day(8), outage=50.0, partial=True)),
        run_figures(make_report("r7", started_at=day(7), outage=2.0)),
        run_figures(make_report("r6", started_at=day(6), outage=2.2, outcome="failed")),
        run_figures(make_report("r5", started_at=day(5), outage=1.8)),
        run_figures(make_report("r4", started_at=day(4), outage=90.0)),
    ]
    current = run_figures(make_report("r10", started_at=day(10), outage=3.0))
    gates = regression_gates(spec, current, previous)
    assert [g["name"] for g in gates] == ["regression.outage", "regression.time_to_recover"]
    outage = gates[0]
    assert outage["compared_runs"] == ["r7", "r6", "r5"]
    assert outage["median"] == 2.0
    assert outage["limit"] == pytest.approx(2.4)
    assert outage["passed"] is False
    assert outage["unit"] == "s"
    assert gates[1]["passed"] is True


def test_margin_needs_a_percent_sign() -> None:
    """The drill file writes margins as percentages; a bare number is refused."""
    gate = Gates.model_validate({"regression": {"margin": "35%"}}).regression
    assert gate is not None and gate.margin == 0.35
    with pytest.raises(ValueError, match="needs a percent sign"):
        Gates.model_validate({"regression": {"margin": 20}})
