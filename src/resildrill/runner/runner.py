"""The runner: checks before a run may touch a target, then one :class:`DrillRun`.

preflight -> guards (one drill per target, no faults left by an earlier run, the target is
who it says) -> the run's phases (runner/drill_run.py) -> a :class:`RunRecord`.

The runner owns *when*. Backends own *how* (through the contract in faults/base.py), the
sampler owns *what was seen*; whether the steady state held is asked of a function the
caller passes in, so the runner never does the analysis itself.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from resildrill.clock import iso_utc
from resildrill.drill.loader import LoadedDrill
from resildrill.errors import InvalidInput, ToolProblem
from resildrill.plugins import FaultRegistry
from resildrill.runner.drill_run import (
    CRASH_POINTS,
    DrillRun,
    RunOptions,
    RunParts,
    fault_context,
)
from resildrill.runner.plan import scheduled_revert_offset
from resildrill.runner.record import FaultRun, RunRecord, RunStatus
from resildrill.runner.safety import TargetLock, check_identity, stale_journals

__all__ = [
    "CRASH_POINTS",
    "DrillRunner",
    "FaultRun",
    "RunOptions",
    "RunParts",
    "RunRecord",
    "RunStatus",
    "default_api_base",
    "new_run_id",
    "scheduled_revert_offset",
]


def new_run_id(drill_name: str, wall: float) -> str:
    """``<drill>-<UTC time>-<4 hex>``: sortable, unique, safe as a folder name."""
    stamp = iso_utc(wall).replace("-", "").replace(":", "").replace(".", "")[:15]
    return f"{drill_name}-{stamp}Z-{uuid.uuid4().hex[:4]}"


class DrillRunner:
    """Runs one loaded drill against its target."""

    def __init__(
        self,
        drill: LoadedDrill,
        *,
        registry: FaultRegistry,
        out_dir: Path,
        options: RunOptions | None = None,
        parts: RunParts | None = None,
    ) -> None:
        self.drill = drill
        self.spec = drill.spec
        self.registry = registry
        self.out_dir = out_dir
        self.options = options or RunOptions()
        self.parts = parts or RunParts()

    def preflight(self) -> list[str]:
        """Problems that would stop any fault being injected and reverted; touches nothing."""
        ctx = fault_context(self.drill, "preflight", self.parts.clock)
        problems = []
        for spec in self.spec.faults:
            backend = self.registry.backend(spec.kind)
            for p in backend.preflight(spec, ctx):
                where = f"faults[{spec.id}]: {p}"
                problems.append(ToolProblem(where) if isinstance(p, ToolProblem) else where)
        return problems

    def run(self) -> RunRecord:
        """Run the drill once every guard passed. Always reverts what it injected."""
        run_id = new_run_id(self.spec.name, self.parts.clock.wall())
        target = self.drill.target
        load_host = self._load_host()  # bad input is refused before a run folder exists
        lock = TargetLock(target.spec.name)
        lock.acquire(run_id)
        try:
            stale = stale_journals(self.out_dir, target.spec.name)
            if stale:
                more = len(stale) - 1
                raise InvalidInput(
                    f"an earlier run against {target.spec.name!r} left faults injected; "
                    f"undo them first: resildrill rollback {stale[0]}"
                    + (f" (and {more} more: resildrill rollback --all)" if more else "")
                )
            if target.spec.identity is not None:
                why = check_identity(target.spec.identity)
                if why:
                    raise InvalidInput(f"{target.path}: identity: {why}; nothing injected")
            run = DrillRun(
                self.drill,
                run_id,
                self.out_dir / run_id,
                self.registry,
                self.parts,
                self.options,
                make_load=lambda run_dir, t0: self._make_load(load_host, run_dir, t0),
            )
            run.open()
            return run.execute()
        finally:
            lock.release()

    def _load_host(self) -> str | None:
        if self.spec.load is None:
            return None
        return self.spec.load.host or default_api_base(self.drill.target.spec)

    def _make_load(self, host: str | None, run_dir: Path, t0: float) -> Any:
        """The Locust driver for the drill's ``load`` section, or None (never imports locust)."""
        if self.spec.load is None or host is None:
            return None
        from resildrill.load.driver import LoadDriver

        load = self.spec.load
        if load.hl7 is not None:  # HL7 senders go to the target's engine service
            hl7 = load.hl7.resolved(self.drill.target.spec)
            load = load.model_copy(update={"hl7": hl7})
        if load.dicom is not None:  # radiology goes to the target's PACS service
            load = load.model_copy(update={"dicom": load.dicom.resolved(self.drill.target.spec)})
        return LoadDriver(
            load,
            host=host,
            run_dir=run_dir,
            monotonic_t0=t0,
            drill_dir=self.drill.path.resolve().parent,
        )


def default_api_base(target: Any) -> str:
    """The origin of the target's clinical probe: where clinician load is sent by default."""
    from urllib.parse import urlsplit

    for probe in target.probes:
        if probe.role == "clinical" and probe.http is not None:
            parts = urlsplit(probe.http.url)
            return f"{parts.scheme}://{parts.netloc}"
    raise InvalidInput("load: set 'load.host' (the target has no clinical HTTP probe)")
