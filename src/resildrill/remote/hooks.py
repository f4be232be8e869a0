"""Run-scoped hooks shared by the fault kinds that act through hosts' guards.

``teardown_run`` hands each guard off cleanly (``bye``: the guard reverts anything left and
ends); ``halt_reason`` tells the runner, on every tick, that contact with a guard is lost:
the drill halts, and the revert reads the guard's own record (DESIGN.md: exit 3 when the
guard shows it reverted, else 4).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

from resildrill.drill.model import FaultSpec
from resildrill.faults.base import FaultContext
from resildrill.remote import hostops
from resildrill.remote.session import SESSIONS


class RemoteHooks:
    kind: ClassVar[str]

    def remote_hosts(self, spec: FaultSpec, ctx: FaultContext) -> list[str]:
        """The hosts a fault of this kind acts on through their guards (none: local)."""
        return []

    def setup_run(self, ctx: FaultContext, run_dir: Path) -> list[dict[str, Any]]:
        """Start the guard on every host this kind's faults will touch, before the baseline
        (in parallel): the first injection then costs one request, not an SSH start-up."""
        names = sorted(
            {
                h
                for spec in ctx.faults
                if spec.kind == self.kind
                for h in self.remote_hosts(spec, ctx)
            }
        )
        if not names:
            return []
        records = [hostops.host_record(ctx.target, n, ctx.target_dir) for n in names]
        with ThreadPoolExecutor(max_workers=min(32, len(records))) as pool:
            sessions = list(pool.map(lambda rec: hostops.session(rec, ctx.run_id), records))
        return [
            {"type": "remote_guard", "host": s.host, "guard_pid": s.guard_pid} for s in sessions
        ]

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
