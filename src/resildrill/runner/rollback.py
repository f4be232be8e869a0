"""Reverting what a journal says is still injected: last injected, first reverted.

Works from the journal and the fault registry alone (no drill or target file), so it can
clean up after a runner that was killed. Every revert is idempotent and is confirmed by
the backend's own inspection of the live system, then journalled; a second rollback of
the same journal finds nothing to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from resildrill.clock import Clock, MonotonicClock
from resildrill.faults.embedded_proxy import PathCheck, check_paths
from resildrill.plugins import FaultRegistry
from resildrill.runner.journal import Journal, PendingFault, pending_faults, read_journal


class RollbackPolicy(Enum):
    """When a run reverts its faults at its end."""

    ALWAYS = "always"
    ON_FAILURE = "on_failure"
    NEVER = "never"


@dataclass
class RollbackResult:
    """What a rollback did and what it could not undo."""

    reverted: list[str] = field(default_factory=list)
    #: (fault id, what is still injected, a command that undoes it)
    still_injected: list[tuple[str, str, str]] = field(default_factory=list)
    #: every proxied hop of the run, checked by a connection through it after the reverts
    paths: list[PathCheck] = field(default_factory=list)

    @property
    def nothing_to_do(self) -> bool:
        return not self.reverted and not self.still_injected

    @property
    def paths_cut(self) -> list[PathCheck]:
        return [p for p in self.paths if p.problem]

    @property
    def exit_code(self) -> int:
        return 4 if self.still_injected or self.paths_cut else 0


def check_journal_paths(records: list[dict[str, Any]]) -> list[PathCheck]:
    """Check every proxied hop a journal's run declared (``proxy_paths`` records), once per
    Toxiproxy API: a connection through each listen address, the embedded server started
    again if it is gone. A network path is never left cut by the tool."""
    seen: set[str] = set()
    checks: list[PathCheck] = []
    for record in records:
        if record.get("type") != "proxy_paths" or str(record.get("url")) in seen:
            continue
        seen.add(str(record.get("url")))
        checks += check_paths(record)
    return checks


def issue_revert(
    pending: PendingFault,
    registry: FaultRegistry,
    journal: Journal,
    *,
    acting: Callable[[], None] | None = None,
) -> tuple[bool, str]:
    """Send the undo of one pending fault (its intent journalled first); not yet confirmed.

    ``acting`` is called between the fsynced intent and the backend call (the runner
    stamps the revert there). Returns (sent, what the backend did or why it failed; a
    failure is journalled).
    """
    backend = registry.backend(pending.kind)
    journal.append("revert_intent", fault_id=pending.fault_id, kind=pending.kind)
    if acting is not None:
        acting()
    try:
        return True, backend.revert(pending.recipe)
    except Exception as exc:  # any backend error must leave a record and a hint
        journal.append("revert_failed", fault_id=pending.fault_id, error=str(exc))
        return False, f"revert failed: {exc}"


def confirm_revert(
    pending: PendingFault,
    registry: FaultRegistry,
    journal: Journal,
    issued: tuple[bool, str],
    *,
    confirm_timeout_s: float = 5.0,
    clock: Clock | None = None,
) -> tuple[bool, str]:
    """Wait until an issued undo shows on the system, and journal the outcome."""
    sent, done = issued
    if not sent:
        return False, done
    backend = registry.backend(pending.kind)
    recipe: dict[str, Any] = pending.recipe
    clock = clock or MonotonicClock()
    deadline = clock.monotonic() + confirm_timeout_s
    while backend.is_injected(recipe) and clock.monotonic() < deadline:
        clock.sleep(0.05)
    if backend.is_injected(recipe):
        journal.append("revert_failed", fault_id=pending.fault_id, error="still injected")
        return False, "still injected after revert"
    journal.append("reverted", fault_id=pending.fault_id, result=done)
    return True, done


def revert_pending(
    pending: PendingFault,
    registry: FaultRegistry,
    journal: Journal,
    *,
    confirm_timeout_s: float = 5.0,
) -> tuple[bool, str]:
    """Revert one pending fault, confirm it is gone, and journal the outcome."""
    issued = issue_revert(pending, registry, journal)
    return confirm_revert(pending, registry, journal, issued, confirm_timeout_s=confirm_timeout_s)


def revert_all_pending(
    pending: list[PendingFault],
    registry: FaultRegistry,
    journal: Journal,
    *,
    confirm_timeout_s: float = 5.0,
) -> list[tuple[bool, str]]:
    """Issue every undo first (in the given order), then confirm each: one slow fault
    does not hold back the others' reverts (a halt must issue them all within a second)."""
    issued = [issue_revert(p, registry, journal) for p in pending]
    return [
        confirm_revert(p, registry, journal, i, confirm_timeout_s=confirm_timeout_s)
        for p, i in zip(pending, issued, strict=True)
    ]


def rollback_journal(path: Path, registry: FaultRegistry) -> RollbackResult:
    """Revert every fault the journal at ``path`` left injected, newest first; a journal
    this user did not write, or that was changed since, is refused (JournalUntrusted)."""
    records = read_journal(path, verify=True)
    result = RollbackResult()
    pending = pending_faults(records)
    if not pending:
        result.paths = check_journal_paths(records)
        return result
    with Journal(path) as journal:
        journal.append("rollback_start", pending=[p.fault_id for p in pending])
        newest_first = list(reversed(pending))
        outcomes = revert_all_pending(newest_first, registry, journal)
        for item, (ok, detail) in zip(newest_first, outcomes, strict=True):
            if ok:
                result.reverted.append(f"{item.fault_id}: {detail}")
            else:
                hint = registry.backend(item.kind).undo_hint(item.recipe)
                result.still_injected.append((item.fault_id, detail, hint))
        result.paths = check_journal_paths(records)
        journal.append(
            "rollback_end",
            still_injected=[s[0] for s in result.still_injected],
            paths=[p.describe() for p in result.paths],
        )
    return result
