"""Comparing two runs figure by figure."""

from __future__ import annotations

from tests.unit.history.reports import make_report

from resildrill.history.compare import compare_reports


def rows_by_figure(a: dict, b: dict) -> dict:  # type: ignore[type-arg]
    """Rows of compare_reports(a, b) keyed by figure name."""
    return {r.figure: r for r in compare_reports(a, b).rows}


def test_longer_recovery_is_worse_with_delta_and_percent() -> None:
    """A time to recover going from 2 s to 3 s is +1 s, +50%, worse."""
    rows = rows_by_figure(make_report("a", ttr=2.0), make_report("b", ttr=3.0))
    row = rows["kill.time_to_recover_s"]
    assert (row.a, row.b, row.delta, row.change_pct, row.verdict) == (2.0, 3.0, 1.0, 50.0, "worse")
    assert rows["time_to_recover_s (worst)"].verdict == "worse"


def test_higher_availability_is_better() -> None:
    """Availability has the opposite direction: up is better."""
    rows = rows_by_figure(make_report("a", availability=0.9), make_report("b", availability=0.95))
    assert rows["availability"].verdict == "better"


def test_sub_bucket_changes_are_the_same() -> None:
    """A change under half a 100 ms bucket is rounding, not a change."""
    rows = rows_by_figure(make_report("a", ttr=0.299), make_report("b", ttr=0.3))
    assert rows["kill.time_to_recover_s"].verdict == "same"


def test_fault_that_stops_recovering_is_worse() -> None:
    """A recovered fault that no longer recovers is worse, on both figures."""
    rows = rows_by_figure(make_report("a", ttr=2.0), make_report("b", ttr=None))
    assert rows["kill.time_to_recover_s"].verdict == "worse"
    assert rows["kill.recovered"].verdict == "worse"


def test_gates_and_identities_are_compared() -> None:
    """A gate that starts failing is worse; both runs are identified."""
    failing = [{"name": "max_outage", "limit": 2.0, "value": 3.0, "passed": False}]
    passing = [{"name": "max_outage", "limit": 2.0, "value": 1.0, "passed": True}]
    comparison = compare_reports(make_report("a", gates=passing), make_report("b", gates=failing))
    rows = {r.figure: r for r in comparison.rows}
    assert rows["max_outage.passed"].verdict == "worse"
    assert comparison.a["run_id"] == "a" and comparison.b["run_id"] == "b"
    assert comparison.as_dict()["rows"][0]["figure"] == "outcome"
