"""Reverting what a journal says is still injected: last injected, first reverted.

Works from the journal and the fault registry alone (no drill or target file), so it can
clean up after a runner that was killed. Every revert is idempotent and is confirmed by
the backend's own inspection of the live system, then journalled; a second rollback of
the same journal finds nothing to do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

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

    @property
    def nothing_to_do(self) -> bool:
        return not self.reverted and not self.still_injected

    @property
    def exit_code(self) -> int:
        return 4 if self.still_injected else 0


def revert_pending(
    pending: PendingFault,
    registry: FaultRegistry,
    journal: Journal,
    *,
    confirm_timeout_s: float = 5.0,
) -> tuple[bool, str]:
    """Revert one pending fault, confirm it is gone, and journal the outcome."""
    backend = registry.backend(pending.kind)
    recipe: dict[str, Any] = pending.recipe
    journal.append("revert_intent", fault_id=pending.fault_id, kind=pending.kind)
    try:
        done = backend.revert(recipe)
    except Exception as exc:  # any backend error must leave a record and a hint
        journal.append("revert_failed", fault_id=pending.fault_id, error=str(exc))
        return False, f"revert failed: {exc}"
    deadline = time.monotonic() + confirm_timeout_s
    while backend.is_injected(recipe) and time.monotonic() < deadline:
        time.sleep(0.05)
    if backend.is_injected(recipe):
        journal.append("revert_failed", fault_id=pending.fault_id, error="still injected")
        return False, "still injected after revert"
    journal.append("reverted", fault_id=pending.fault_id, result=done)
    return True, done


def rollback_journal(path: Path, registry: FaultRegistry) -> RollbackResult:
    """Revert every fault the journal at ``path`` left injected, newest first."""
    records = read_journal(path)
    result = RollbackResult()
    pending = pending_faults(records)
    if not pending:
        return result
    with Journal(path) as journal:
        journal.append("rollback_start", pending=[p.fault_id for p in pending])
        for item in reversed(pending):
            ok, detail = revert_pending(item, registry, journal)
            if ok:
                result.reverted.append(f"{item.fault_id}: {detail}")
            else:
                hint = registry.backend(item.kind).undo_hint(item.recipe)
                result.still_injected.append((item.fault_id, detail, hint))
        journal.append("rollback_end", still_injected=[s[0] for s in result.still_injected])
    return result
