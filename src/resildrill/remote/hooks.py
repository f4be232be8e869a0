"""Run-scoped hooks shared by the fault kinds that act through hosts' guards.

``teardown_run`` hands each guard off cleanly (``bye``: the guard reverts anything left and
ends); ``halt_reason`` tells the runner, on every tick, that contact with a guard is lost:
the drill halts, and the revert reads the guard's own record (DESIGN.md: exit 3 when the
guard shows it reverted, else 4).
"""

from __future__ import annotations

from pathlib import Path

from resildrill.faults.base import FaultContext
from resildrill.remote.session import SESSIONS


class RemoteHooks:
    def teardown_run(self, ctx: FaultContext, run_dir: Path) -> list[str]:
        leftovers = SESSIONS.close_run(ctx.run_id)
        return [
            f"host {host!r}: the guard reverted {', '.join(faults)} at the hand-off"
            for host, faults in leftovers.items()
            if faults
        ]

    def halt_reason(self, ctx: FaultContext) -> str | None:
        lost = [(h, why) for h, why in SESSIONS.lost_for(ctx.run_id)]
        if not lost:
            return None
        host, why = lost[0]
        return f"lost contact with the guard on host {host!r}: {why}"
