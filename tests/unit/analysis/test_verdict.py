"""Gates and outcome: thresholds over recovery results and the summary."""

from __future__ import annotations

from typing import Any

from resildrill.analysis import GateResult, RecoveryResult, Summary, evaluate_gates, outcome_for
from resildrill.drill.model import Gates


def result(
    *,
    ttd: float | None = 0.3,
    ttr: float | None = 1.2,
    recovered: bool = True,
    relapses: int = 0,
) -> RecoveryResult:
    """A recovery result with only the fields gates read set."""
    return RecoveryResult(
        time_to_detect_s=ttd,
        time_to_recover_s=ttr,
        recovered=recovered,
        recovered_at_s=None,
        outage_s=0.0,
        degraded_s=0.0,
        relapses=relapses,
        truncated_by=None,
    )


SUMMARY = Summary(outage_s=1.5, degraded_s=2.0, availability=0.95)


def gates(**kw: Any) -> Gates:
    """Gates from drill-file values (durations as strings with units)."""
    return Gates.model_validate(kw)


def by_name(results: list[GateResult]) -> dict[str, GateResult]:
    """Gate results keyed by name."""
    return {g.name: g for g in results}


def test_default_gates_are_only_all_faults_recovered() -> None:
    """With default gates only the implicit all_faults_recovered is judged."""
    got = evaluate_gates(Gates(), [("f1", result())], SUMMARY)
    assert got == [GateResult("all_faults_recovered", True, True, True)]
    assert outcome_for(got) == ("passed", 0)


def test_unrecovered_fault_fails_recovery_gates() -> None:
    """A fault that did not recover fails all_faults_recovered and max_time_to_recover."""
    faults = [("f1", result(ttr=0.5)), ("f2", result(ttr=None, recovered=False))]
    got = by_name(evaluate_gates(gates(max_time_to_recover="10s"), faults, SUMMARY))
    assert got["all_faults_recovered"] == GateResult("all_faults_recovered", True, False, False)
    assert got["max_time_to_recover"] == GateResult("max_time_to_recover", 10.0, None, False)
    assert outcome_for(list(got.values())) == ("failed", 1)


def test_all_faults_recovered_can_be_turned_off() -> None:
    """A drill that turns all_faults_recovered off gets no such gate."""
    faults = [("f1", result(ttr=None, recovered=False))]
    got = evaluate_gates(gates(all_faults_recovered=False), faults, SUMMARY)
    assert got == [] and outcome_for(got) == ("passed", 0)


def test_max_time_to_recover_takes_the_worst_fault() -> None:
    """The gate's value is the largest recovery time, compared inclusively with its limit."""
    faults = [("f1", result(ttr=1.2)), ("f2", result(ttr=3.0))]
    assert by_name(evaluate_gates(gates(max_time_to_recover="3s"), faults, SUMMARY))[
        "max_time_to_recover"
    ] == GateResult("max_time_to_recover", 3.0, 3.0, True)
    assert not by_name(evaluate_gates(gates(max_time_to_recover="2900ms"), faults, SUMMARY))[
        "max_time_to_recover"
    ].passed


def test_max_time_to_detect_ignores_faults_without_breach() -> None:
    """Undetected faults (no breach) do not count; the worst detected one does."""
    faults = [("f1", result(ttd=None, ttr=0.0)), ("f2", result(ttd=0.7))]
    got = by_name(evaluate_gates(gates(max_time_to_detect="500ms"), faults, SUMMARY))
    assert got["max_time_to_detect"] == GateResult("max_time_to_detect", 0.5, 0.7, False)
    none = by_name(evaluate_gates(gates(max_time_to_detect="500ms"), faults[:1], SUMMARY))
    assert none["max_time_to_detect"] == GateResult("max_time_to_detect", 0.5, None, True)


def test_summary_gates() -> None:
    """Outage, degraded, relapses and availability gates read the summary and the faults."""
    faults = [("f1", result(relapses=1)), ("f2", result(relapses=1))]
    g = gates(max_outage="2s", max_degraded="1s", max_relapses=1, min_availability=0.95)
    got = evaluate_gates(g, faults, SUMMARY)
    assert [x.name for x in got] == [
        "all_faults_recovered",
        "max_outage",
        "max_degraded",
        "max_relapses",
        "min_availability",
    ]
    named = by_name(got)
    assert named["max_outage"] == GateResult("max_outage", 2.0, 1.5, True)
    assert named["max_degraded"] == GateResult("max_degraded", 1.0, 2.0, False)
    assert named["max_relapses"] == GateResult("max_relapses", 1, 2, False)
    assert named["min_availability"] == GateResult("min_availability", 0.95, 0.95, True)
    assert outcome_for(got) == ("failed", 1)


def test_no_faults_pass_fault_gates() -> None:
    """A drill without faults passes the per-fault gates with no value to show."""
    got = by_name(evaluate_gates(gates(max_time_to_recover="1s"), [], SUMMARY))
    assert got["all_faults_recovered"].passed
    assert got["max_time_to_recover"] == GateResult("max_time_to_recover", 1.0, None, True)
