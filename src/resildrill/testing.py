"""Testing helpers for plugin authors and resildrill's own tests: a drill run in-process,
on a fake clock, against a fake system.

    from resildrill.testing import FakeSystem, run_in_process

    system = FakeSystem(heals_after_s=0.5)        # probes fail while a fault is in place
    result = run_in_process("drill.yaml", system)  # a fault ``kind: fake``, no sleeping
    assert result.exit_code == 0

- :class:`FakeClock` advances only when the run sleeps: a 30 s drill takes milliseconds.
- :class:`FakeSystem` is what the probes see: down while a fake fault is injected and for
  ``heals_after_s`` after its revert (or for ``down_for_s`` after injection when the fault
  heals itself), plus any outage you script with :meth:`FakeSystem.down_between`.
- :class:`FakeFaultBackend` (``kind: fake``) injects into the FakeSystem and can be told to
  fail its injection (``fail: inject``), or to stay injected after its revert
  (``fail: revert``), for every exit code the runner can give.
- :func:`run_in_process` runs the same code as ``resildrill run`` (guards, journal,
  analysis, report, exit code) with these parts; nothing leaves the process, no watchdog
  process is started (:class:`FakeWatchdog` stands in, and only here).

Your own backend can be added to the registry beside the fake one (``backends=``).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from resildrill.api import DrillResult, run_drill
from resildrill.drill.model import FaultSpec
from resildrill.errors import InjectionFailed
from resildrill.faults.base import BackendHooks, FaultContext, Recipe
from resildrill.observe.probes import Probe, Sample
from resildrill.plugins import FaultRegistry
from resildrill.runner.drill_run import RunParts

__all__ = [
    "FakeClock",
    "FakeFaultBackend",
    "FakeFaultSpec",
    "FakeSystem",
    "FakeWatchdog",
    "ScriptedSampler",
    "run_in_process",
]


class FakeClock:
    """A clock that moves only when someone sleeps (thread-safe)."""

    def __init__(self, start: float = 1000.0, wall: float = 1_800_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall - start
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def wall(self) -> float:
        with self._lock:
            return self._now + self._wall_offset

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)


@dataclass
class FakeSystem:
    """What the probes of a fake-run see, on the fake clock."""

    heals_after_s: float = 0.0
    #: a self-healing fault (no duration) keeps the system down this long after injection
    down_for_s: float = 1.0
    outages: list[tuple[float, float]] = field(default_factory=list)  # monotonic [a, b)
    injected: dict[str, float] = field(default_factory=dict)  # fault id -> injected at
    reverted: dict[str, float] = field(default_factory=dict)  # fault id -> reverted at
    stuck: set[str] = field(default_factory=set)  # faults whose revert does not take
    clock: FakeClock = field(default_factory=FakeClock)

    def down_between(self, start: float, end: float) -> None:
        """Script an outage (monotonic times of :attr:`clock`)."""
        self.outages.append((start, end))

    def healthy(self, at: float) -> bool:
        if any(a <= at < b for a, b in self.outages):
            return False
        for fault, injected in self.injected.items():
            if at < injected:
                continue
            end = self.reverted.get(fault)
            if end is None:
                return False  # still injected (a self-healing one is revertable only)
            if at < end + self.heals_after_s:
                return False
        return True


class FakeFaultSpec(FaultSpec):
    """``kind: fake``: a fault in the :class:`FakeSystem`."""

    kind: Literal["fake"]
    fail: Literal["inject", "revert"] | None = Field(
        default=None, description="make the injection fail, or the revert not take"
    )


class FakeFaultBackend(BackendHooks):
    """Injects into the FakeSystem of the current :func:`run_in_process`."""

    kind: ClassVar[str] = "fake"
    spec_model: ClassVar[type[FaultSpec]] = FakeFaultSpec
    system: ClassVar[FakeSystem | None] = None

    def _system(self) -> FakeSystem:
        if FakeFaultBackend.system is None:
            raise InjectionFailed("no FakeSystem: use resildrill.testing.run_in_process")
        return FakeFaultBackend.system

    def preflight(self, spec: FaultSpec, ctx: FaultContext) -> list[str]:
        return []

    def prepare(self, spec: FaultSpec, ctx: FaultContext) -> Recipe:
        assert isinstance(spec, FakeFaultSpec)
        return {"kind": self.kind, "fault": spec.id, "fail": spec.fail}

    def inject(self, spec: FaultSpec, recipe: Recipe, ctx: FaultContext) -> Recipe:
        system = self._system()
        if recipe["fail"] == "inject":
            raise InjectionFailed(f"{spec.id}: the fake injection was told to fail")
        system.injected[spec.id] = system.clock.monotonic()
        if spec.duration is None:  # heals itself after down_for_s
            system.reverted[spec.id] = system.clock.monotonic() + system.down_for_s
        if recipe["fail"] == "revert":
            system.stuck.add(spec.id)
        return recipe

    def revert(self, recipe: Recipe) -> str:
        system = self._system()
        fault = str(recipe["fault"])
        if fault not in system.stuck:
            system.reverted.setdefault(fault, system.clock.monotonic())
        return f"reverted fake {fault}"

    def is_injected(self, recipe: Recipe) -> bool:
        return str(recipe["fault"]) in self._system().stuck

    def self_heals(self, spec: FaultSpec, ctx: FaultContext) -> bool:
        return spec.duration is None

    def undo_hint(self, recipe: Recipe) -> str:
        return f"nothing to undo by hand: fake fault {recipe['fault']}"


class ScriptedSampler:
    """Samples every probe on its interval from the FakeSystem, on the fake clock."""

    def __init__(self, probes: list[Probe], system: FakeSystem) -> None:
        self.probes, self.system = probes, system
        self._next: dict[str, float] = {}

    def start(self, t0: float) -> None:
        self._next = {p.name: t0 for p in self.probes}

    def drain(self) -> list[Sample]:
        now = self.system.clock.monotonic()
        out = []
        for probe in self.probes:
            at = self._next.get(probe.name)
            while at is not None and at <= now:
                ok = self.system.healthy(at)
                out.append(Sample(probe.name, at, ok, 0.002 if ok else probe.spec.timeout))
                at += probe.spec.interval
            if at is not None:
                self._next[probe.name] = at
        return out

    def stop(self) -> None:
        self._next = {}


class FakeWatchdog:
    """Stands in for the watchdog process in in-process runs only: nothing is injected
    outside this process, so nothing needs watching."""

    def __init__(self, run_dir: Path, stale_after_s: float) -> None:
        self.run_dir = run_dir

    def watching(self) -> bool:
        return True

    def finish(self) -> None:
        return None


def run_in_process(
    drill: str | os.PathLike[str],
    system: FakeSystem | None = None,
    *,
    out: str | os.PathLike[str] | None = None,
    backends: dict[str, type[Any]] | None = None,
    **options: Any,
) -> DrillResult:
    """Run ``drill`` as ``resildrill run`` would, on the fake clock against ``system``.

    ``out`` defaults to a ``reports`` folder beside the drill; ``options`` go to
    :func:`resildrill.run_drill` (``yes``, ``history``, ...).
    """
    system = system or FakeSystem()
    registry = FaultRegistry.discover()
    registry = FaultRegistry({**registry.classes(), "fake": FakeFaultBackend, **(backends or {})})
    parts = RunParts(
        clock=system.clock,
        make_sampler=lambda probes: ScriptedSampler(probes, system),
        start_watchdog=FakeWatchdog,
    )
    FakeFaultBackend.system = system
    try:
        result = run_drill(
            drill,
            out=out if out is not None else Path(drill).parent / "reports",
            registry=registry,
            parts=parts,
            **{"history": False, "yes": True, **options},
        )
    finally:
        FakeFaultBackend.system = None
    assert result is not None  # not a preflight-only call
    return result
