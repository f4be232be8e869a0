"""outcome.py: the one place a run's outcome, exit code and reason are decided."""

from __future__ import annotations

import itertools

import pytest

from resildrill.outcome import PRECEDENCE, decide

STATUSES = ("completed", "aborted", "not_ready", "error")


@pytest.mark.parametrize(
    ("status", "stuck", "gates", "partial"),
    list(itertools.product(STATUSES, (False, True), (False, True), (False, True))),
)
def test_precedence_4_6_3_5_1_0(status: str, stuck: bool, gates: bool, partial: bool) -> None:
    """Every combination: the first that applies in 4 > 6 > 3 > 5 > 1 > 0 wins."""
    verdict = decide(
        run_status=status,
        run_reason="why" if status != "completed" else None,
        still_injected=["f (undo with: x)"] if stuck else [],
        failed_gates=["max_outage"] if gates else [],
        partial=partial,
    )
    applies = {
        4: stuck,
        6: status == "error" or partial,
        3: status == "aborted" and not partial,
        5: status == "not_ready" and not partial,
        1: status == "completed" and gates and not partial,
    }
    expected = next((c for c in (4, 6, 3, 5, 1) if applies[c]), 0)
    assert verdict.exit_code == expected
    if stuck:
        assert verdict.reason == "still injected: f (undo with: x)"


def test_names_and_codes() -> None:
    assert [(o.name, o.exit_code) for o in PRECEDENCE] == [
        ("error", 4),
        ("error", 6),
        ("aborted", 3),
        ("not_ready", 5),
        ("failed", 1),
        ("passed", 0),
    ]


def test_gate_reason_lists_every_failed_gate() -> None:
    verdict = decide(
        run_status="completed", run_reason=None, still_injected=[], failed_gates=["a", "b"]
    )
    assert (verdict.outcome.name, verdict.reason) == ("failed", "gate failed: a, b")
