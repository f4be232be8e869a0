"""Reading a run's figures out of report.json."""

from __future__ import annotations

import pytest
from tests.unit.history.reports import make_report

from resildrill.history.figures import run_figures, timestamp_of


def test_worst_time_to_recover_over_faults() -> None:
    """The run's time to recover is the worst of its faults."""
    report = make_report("r1", ttr=2.0)
    second = dict(report["faults"][0], id="kill-2")
    second["recovery"] = dict(second["recovery"], time_to_recover_s=4.5, relapses=2)
    report["faults"].append(second)
    fig = run_figures(report)
    assert fig.time_to_recover_s == 4.5
    assert fig.relapses == 2
    assert fig.metric("relapses") == 2.0


def test_unrecovered_fault_has_no_time_to_recover() -> None:
    """A fault that did not recover leaves the run without a time to recover."""
    fig = run_figures(make_report("r1", ttr=None))
    assert fig.time_to_recover_s is None
    assert not fig.all_recovered


def test_completed_means_passed_or_failed_and_not_partial() -> None:
    """Aborted, errored and partial runs are not compared."""
    assert run_figures(make_report("a", outcome="failed")).completed
    assert not run_figures(make_report("b", outcome="aborted")).completed
    assert not run_figures(make_report("c", partial=True)).completed


def test_timestamps_accept_z_offsets_and_naive() -> None:
    """Z, +01:00 and a naive time (taken as UTC) all order correctly."""
    z = timestamp_of("2026-11-01T10:00:00.000Z")
    assert timestamp_of("2026-11-01T11:00:00+01:00") == z
    assert timestamp_of("2026-11-01T10:00:00") == z


def test_missing_run_id_is_an_error() -> None:
    """A document without run_id is not a report."""
    report = make_report("r1")
    del report["run_id"]
    with pytest.raises(ValueError, match="run_id"):
        run_figures(report)
