"""HL7 delivery figures from read-back rows: counts, delay series, backlog, drain, the ward."""

from __future__ import annotations

from typing import Any

import pytest

from resildrill.analysis.delivery import FaultEnd, analyse_delivery, usual_delay_s
from resildrill.analysis.recovery import Summary
from resildrill.analysis.verdict import evaluate_gates
from resildrill.drill.model import Gates


def row(
    cid: str,
    sent: float,
    filed: float | None,
    *,
    copies: int | None = 1,
    ack: str | None = "AA",
    patient: str = "SYN1",
    kind: str = "oru_r01",
    acked: float | None = None,
) -> dict[str, Any]:
    return {
        "control_id": cid,
        "type": kind,
        "patient": patient,
        "ack": ack,
        "accepted": ack in ("AA", "CA"),
        "sent_s": sent,
        "acked_s": sent + 0.003 if acked is None else acked,
        "copies": 0 if filed is None and copies == 1 else copies,
        "filed_s": filed,
    }


def analyse(rows: list[dict[str, Any]], faults: list[FaultEnd] | None = None, **kw: Any) -> Any:
    return analyse_delivery(
        rows,
        baseline_end_s=kw.pop("baseline_end_s", 1.0),
        faults=faults or [],
        n_buckets=kw.pop("n", 100),
        late_after_s=kw.pop("late_after_s", 900.0),
        **kw,
    )


def test_counts_each_outcome_from_the_read_back() -> None:
    rows = [
        row("a", 0.10, 0.11),
        row("b", 0.20, None),  # accepted, never filed: lost
        row("c", 0.30, 0.31, copies=2),  # filed twice
        row("d", 0.40, None, ack="AE", copies=0),  # refused, not filed
        row("e", 0.50, 0.52, ack="AR", copies=1),  # refused, filed all the same
        row("f", 0.60, None, ack=None, copies=0),  # no ACK
        row("g", 0.70, None, copies=None),  # read-back could not tell
        {**row("h", 0.80, None, kind="adt_a08", copies=None), "readable": False},
    ]
    report, _ = analyse(rows)
    assert {k: report[k] for k in (
        "messages_sent", "accepted", "rejected", "unacknowledged", "not_read_back", "lost",
        "duplicated", "extra_copies", "unverifiable", "stored_unacknowledged",
    )} == {
        "messages_sent": 8, "accepted": 5, "rejected": 2, "unacknowledged": 1,
        "not_read_back": 1, "lost": 1, "duplicated": 1, "extra_copies": 1, "unverifiable": 1,
        "stored_unacknowledged": 1,
    }  # fmt: skip
    assert [e["control_id"] for e in report["examples"]] == ["b", "c"]


def test_delay_series_is_bucketed_by_send_time_and_backlog_by_accept_and_filing() -> None:
    rows = [row("a", 0.01, 0.03), row("b", 0.05, 0.09), row("c", 0.12, 0.55), row("d", 0.13, None)]
    report, series = analyse(rows, n=8)
    assert series["delay_p50_ms"][:3] == [20.0, 430.0, None]
    assert series["delay_max_ms"][:2] == [40.0, 430.0]
    # c is accepted at 0.123 and filed at 0.55; d is accepted and never filed
    assert series["backlog"] == [0, 2, 2, 2, 2, 1, 1, 1]
    assert report["delay_ms"] == {"p50": 40.0, "p95": 430.0, "max": 430.0}


def test_drain_ends_when_the_last_queued_message_is_filed_and_new_ones_are_on_time() -> None:
    # the link is down from 1.0 to 3.0 s: four results queue, then drain in order
    rows = [row("base", 0.5, 0.503)]
    rows += [row(f"q{i}", 1.0 + i * 0.5, 3.2 + i * 0.1) for i in range(4)]  # last filed 3.5
    rows += [row("new1", 3.1, 3.55), row("new2", 3.6, 3.603), row("new3", 4.0, 4.004)]
    report, _ = analyse(rows, [FaultEnd("link", 3.0, 10.0)], usual_delay=0.25)
    drain = report["by_fault"]["link"]
    assert drain["backlog_at_end"] == 4
    assert drain["last_backlog_filed_at_s"] == 3.5
    # new1 was late (0.45 s > 0.25 s usual), filed at 3.55; new2 is on time, and all after it
    assert drain["timely_again_at_s"] == 3.603
    assert drain["drained_at_s"] == 3.55
    assert drain["drain_s"] == pytest.approx(0.55)
    assert report["max_backlog_drain_s"] == pytest.approx(0.55)


def test_no_backlog_and_nothing_late_is_a_drain_of_zero() -> None:
    rows = [row("a", 0.5, 0.51), row("b", 2.5, 2.51)]
    report, _ = analyse(rows, [FaultEnd("kill", 2.0, 5.0)])
    assert report["by_fault"]["kill"]["drain_s"] == 0.0


def test_a_backlog_still_late_when_the_watch_ends_has_not_drained() -> None:
    rows = [row("base", 0.5, 0.51), row("q", 1.5, 4.0), row("slow", 2.5, 4.1)]
    report, _ = analyse(rows, [FaultEnd("link", 2.0, 3.0)], usual_delay=0.25)
    assert report["by_fault"]["link"]["drain_s"] is None
    assert report["max_backlog_drain_s"] is None
    gates = evaluate_gates(Gates(max_backlog_drain="5s"), [], Summary(0, 0, 1), delivery=report)
    assert not gates[1].passed and "had not drained" in (gates[1].reason or "")


def test_usual_delay_is_twice_the_baseline_p99_with_a_floor() -> None:
    fast = [row(str(i), 0.01 * i, 0.01 * i + 0.002) for i in range(50)]
    assert usual_delay_s(fast, 1.0, None) == 0.25
    slow = [row(str(i), 0.01 * i, 0.01 * i + 0.4) for i in range(50)]
    assert usual_delay_s(slow, 1.0, None) == pytest.approx(0.8)
    assert usual_delay_s(slow, 1.0, 2.0) == 2.0


def test_the_ward_nurse_counts_patients_with_late_or_missing_results() -> None:
    rows = [
        row("a", 1.0, 1000.0, patient="SYN1"),  # 999 s: late
        row("b", 2.0, 2.1, patient="SYN1"),
        row("c", 3.0, None, patient="SYN2"),  # never arrived
        row("d", 4.0, 4.1, patient="SYN3"),
        row("e", 5.0, 2000.0, patient="SYN4", kind="adt_a01"),  # not a result
    ]
    report, _ = analyse(rows, n=10)
    assert report["ward"] == {
        "late_after_s": 900.0,
        "patients_with_results": 3,
        "patients_late": 1,
        "patients_never_arrived": 1,
    }


def test_message_gates_fail_when_a_message_could_not_be_read_back() -> None:
    report, _ = analyse([row("a", 0.1, 0.2), row("b", 0.2, None, copies=None)])
    gates = evaluate_gates(
        Gates(max_messages_lost=0, max_messages_duplicated=0, max_delivery_delay="1s"),
        [],
        Summary(0, 0, 1),
        delivery=report,
    )
    by = {g.name: g for g in gates}
    assert not by["max_messages_lost"].passed
    assert "could not be read back" in (by["max_messages_lost"].reason or "")
    assert by["max_delivery_delay"].passed and by["max_delivery_delay"].value == 0.1
    missing = evaluate_gates(Gates(max_messages_lost=0), [], Summary(0, 0, 1), delivery=None)
    assert not missing[1].passed and missing[1].value is None


def test_a_backlog_with_a_message_never_filed_has_not_drained() -> None:
    """A hole in the backlog (lost, or the read-back could not tell) is not a drain, whatever
    arrived after it; nor is a result sent after the end that never arrived."""
    base = [row("base", 0.5, 0.51)]
    on_time = [row("n1", 3.1, 3.11), row("n2", 3.5, 3.51)]
    lost = analyse([*base, row("q1", 1.5, 3.05), row("q2", 1.6, None), *on_time],
                   [FaultEnd("link", 3.0, 5.0)])[0]["by_fault"]["link"]  # fmt: skip
    assert lost["drain_s"] is None and lost["never_filed_from_backlog"] == 1
    unknown = [row("q1", 1.5, 3.05), row("q2", 1.6, None, copies=None)]
    unsure = analyse([*base, *unknown, *on_time], [FaultEnd("link", 3.0, 5.0)])[0]
    assert unsure["by_fault"]["link"]["drain_s"] is None
    hole = [row("q1", 1.5, 3.05), row("n0", 3.05, None), *on_time]
    assert (
        analyse([*base, *hole], [FaultEnd("link", 3.0, 5.0)])[0]["by_fault"]["link"]["drain_s"]
        is None
    )


def test_a_fault_that_never_ended_has_not_drained() -> None:
    rows = [row("base", 0.5, 0.51), row("n1", 3.1, 3.11)]
    report, _ = analyse(rows, [FaultEnd("freeze", 3.0, 5.0, ended=False)])
    assert report["by_fault"]["freeze"]["drain_s"] is None


def test_the_usual_delay_ignores_a_baseline_message_filed_after_the_baseline() -> None:
    """A message sent just before a fault at 0s and filed after it is not 'usual'."""
    rows = [row(str(i), 0.01 * i, 0.01 * i + 0.002) for i in range(50)]
    rows.append(row("caught", 0.95, 60.0))
    assert usual_delay_s(rows, 1.0, None) == 0.25
