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


# -- clinical gates: report.json integrity and load.by_workflow ----------------------------

INTEGRITY = {
    "writes_acknowledged": 40,
    "writes_lost": 0,
    "writes_duplicated": 0,
    "writes_unverifiable": 0,
}


def load(**by_workflow: dict[str, Any]) -> dict[str, Any]:
    """A report.json ``load`` object with the given ``by_workflow`` entries."""
    return {"requests": 100, "failures": 3, "by_workflow": by_workflow}


WARD = load(
    obs_round={"requests": 60, "failures": 5, "failed_actions": 2, "wait_beyond_slo_s": 1.5},
    drug_round={"requests": 40, "failures": 1, "failed_actions": 0, "wait_beyond_slo_s": 3.2},
    bed_manager={"requests": 9, "failures": 0, "failed_actions": 0, "wait_beyond_slo_s": None},
)


def clinical(g: Gates, *, load: Any = WARD, integrity: Any = INTEGRITY) -> list[GateResult]:
    """The gates beyond the implicit all_faults_recovered, on one healthy fault."""
    got = evaluate_gates(g, [("f1", result())], SUMMARY, load=load, integrity=integrity)
    return [x for x in got if x.name != "all_faults_recovered"]


def test_writes_gates_pass_and_fail_on_the_read_back() -> None:
    """Lost and duplicated writes are compared with their limits (0: the clinical norm)."""
    g = gates(max_writes_lost=0, max_writes_duplicated=0)
    assert clinical(g) == [
        GateResult("max_writes_lost", 0, 0, True),
        GateResult("max_writes_duplicated", 0, 0, True),
    ]
    bad = {**INTEGRITY, "writes_lost": 2, "writes_duplicated": 1}
    assert clinical(g, integrity=bad) == [
        GateResult("max_writes_lost", 0, 2, False),
        GateResult("max_writes_duplicated", 0, 1, False),
    ]
    assert clinical(gates(max_writes_lost=2), integrity=bad)[0].passed


def test_writes_gates_fail_when_writes_could_not_be_verified() -> None:
    """An unverifiable write or no read-back at all fails the gate with that reason: a
    write nobody could read back is never counted as safe."""
    g = gates(max_writes_lost=0, max_writes_duplicated=5)
    unverifiable = {**INTEGRITY, "writes_unverifiable": 3}
    lost, dup = clinical(g, integrity=unverifiable)
    assert (lost.value, lost.passed, dup.value, dup.passed) == (0, False, 0, False)
    assert lost.reason is not None and "3 of 40 acknowledged writes could not be read" in (
        lost.reason
    )
    assert "lost writes cannot be ruled out" in lost.reason
    assert dup.reason is not None and "duplicated writes cannot be ruled out" in dup.reason
    missing = clinical(g, integrity=None)
    assert [(x.value, x.passed) for x in missing] == [(None, False), (None, False)]
    assert all(x.reason and "not read back" in x.reason for x in missing)
    assert outcome_for(missing) == ("failed", 1)


def test_failed_actions_one_limit_for_every_workflow_played() -> None:
    """A single number gives one gate per workflow the load played, named after it."""
    got = clinical(gates(max_failed_actions=1))
    assert got == [
        GateResult("max_failed_actions.bed_manager", 1, 0, True),
        GateResult("max_failed_actions.drug_round", 1, 0, True),
        GateResult("max_failed_actions.obs_round", 1, 2, False),
    ]
    assert outcome_for(got) == ("failed", 1)
    assert all(x.passed for x in clinical(gates(max_failed_actions=2)))


def test_failed_actions_per_workflow_mapping() -> None:
    """A mapping judges only its workflows, each with its own limit; one the load did not
    play failed no action."""
    got = clinical(gates(max_failed_actions={"obs_round": 2, "drug_round": 0, "doctor": 0}))
    assert got == [
        GateResult("max_failed_actions.doctor", 0, 0, True),
        GateResult("max_failed_actions.drug_round", 0, 0, True),
        GateResult("max_failed_actions.obs_round", 2, 2, True),
    ]
    tight = clinical(gates(max_failed_actions={"obs_round": 1}))
    assert tight == [GateResult("max_failed_actions.obs_round", 1, 2, False)]


def test_failed_actions_without_load_figures_fail() -> None:
    """No load figures (the load failed or never reported): the gates fail, unmeasured."""
    single = clinical(gates(max_failed_actions=0), load=None)
    assert [(x.name, x.value, x.passed) for x in single] == [("max_failed_actions", None, False)]
    mapped = clinical(gates(max_failed_actions={"obs_round": 3}), load=None)
    assert [(x.name, x.value, x.passed) for x in mapped] == [
        ("max_failed_actions.obs_round", None, False)
    ]
    assert mapped[0].reason and "obs_round" in mapped[0].reason


def test_wait_beyond_slo_takes_the_worst_workflow() -> None:
    """The gate's value is the longest wait of any workflow; failing names the workflow."""
    assert clinical(gates(max_wait_beyond_slo="4s")) == [
        GateResult("max_wait_beyond_slo", 4.0, 3.2, True)
    ]
    (failed,) = clinical(gates(max_wait_beyond_slo="3s"))
    assert (failed.value, failed.passed) == (3.2, False)
    assert failed.reason and "drug_round waited 3.2 s" in failed.reason
    (inclusive,) = clinical(gates(max_wait_beyond_slo="3200ms"))
    assert inclusive.passed


def test_wait_beyond_slo_unmeasured_fails() -> None:
    """No load, or no workflow with a measured wait: value None, failed."""
    for figures in (None, load(bed_manager={"requests": 9, "wait_beyond_slo_s": None})):
        (got,) = clinical(gates(max_wait_beyond_slo="10s"), load=figures)
        assert (got.value, got.passed) == (None, False) and got.reason


def test_clinical_gates_follow_the_gates_field_order() -> None:
    """Every gate configured gives results in the order of the Gates fields."""
    g = gates(
        min_availability=0.9,
        max_wait_beyond_slo="10s",
        max_failed_actions={"obs_round": 5},
        max_writes_duplicated=0,
        max_writes_lost=0,
    )
    assert [x.name for x in clinical(g)] == [
        "min_availability",
        "max_writes_lost",
        "max_writes_duplicated",
        "max_failed_actions.obs_round",
        "max_wait_beyond_slo",
    ]
