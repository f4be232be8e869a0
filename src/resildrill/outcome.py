"""How a run ended, decided in one place: the outcome, its exit code and its reason.

DESIGN.md's table, as data. When several apply, the first in 4 > 6 > 3 > 5 > 1 > 0 wins:
something left injected, the tool failed, aborted, target not ready, a gate failed, passed.
The pipeline decides a run's outcome with :func:`decide`; the history's regression gates,
which come later, call it again with every gate, never by rewriting text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RunStatus = Literal["completed", "aborted", "not_ready", "error"]


@dataclass(frozen=True)
class Outcome:
    """One way a run can end: the report's ``outcome`` and the process's exit code."""

    name: Literal["passed", "failed", "aborted", "not_ready", "error"]
    exit_code: int


PASSED = Outcome("passed", 0)
GATE_FAILED = Outcome("failed", 1)
ABORTED = Outcome("aborted", 3)
STILL_INJECTED = Outcome("error", 4)
NOT_READY = Outcome("not_ready", 5)
TOOL_FAILED = Outcome("error", 6)

#: Precedence, first wins.
PRECEDENCE: tuple[Outcome, ...] = (
    STILL_INJECTED,
    TOOL_FAILED,
    ABORTED,
    NOT_READY,
    GATE_FAILED,
    PASSED,
)
_BY_STATUS: dict[str, Outcome] = {"error": TOOL_FAILED, "aborted": ABORTED, "not_ready": NOT_READY}


@dataclass(frozen=True)
class Verdict:
    """The decided outcome with the reason a reader is shown."""

    outcome: Outcome
    reason: str | None

    @property
    def exit_code(self) -> int:
        return self.outcome.exit_code


def decide(
    *,
    run_status: str,
    run_reason: str | None,
    still_injected: list[str],
    failed_gates: list[str],
    partial: bool = False,
) -> Verdict:
    """The verdict of a run.

    ``still_injected``: one "fault (undo with: ...)" per fault left in place;
    ``failed_gates``: names of the gates that failed (judged only for a completed run);
    ``partial``: a report rebuilt after the runner died (always a tool failure).
    """
    found: list[Outcome] = []
    reason = run_reason
    if still_injected:
        found.append(STILL_INJECTED)
        reason = "still injected: " + "; ".join(still_injected)
    if run_status in _BY_STATUS:
        found.append(_BY_STATUS[run_status])
    if run_status == "completed" and failed_gates:
        found.append(GATE_FAILED)
        reason = reason or "gate failed: " + ", ".join(failed_gates)
    if partial:
        found.append(TOOL_FAILED)
        reason = reason or "the runner stopped before the end; figures cover what it measured"
    outcome = next((o for o in PRECEDENCE if o in found), PASSED)
    if partial and outcome is not STILL_INJECTED:
        outcome = TOOL_FAILED
    return Verdict(outcome, reason)
