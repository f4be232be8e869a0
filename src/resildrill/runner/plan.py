"""The step plan of a drill: what happens when, as data, built once.

``resildrill plan`` prints it and the runner executes it, so the two cannot disagree. Every
time is an offset in seconds from the run's ``monotonic_t0``. The baseline starts after the
clinician load is up (``lead_s``, measured by the runner; 0 for ``plan``, which says so):
the plan built at run time carries it, and so does the report (``baseline_end_s``).

At one instant reverts come before injections, and injections before manual steps.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from resildrill.drill.model import DrillSpec, FaultSpec
from resildrill.faults.base import FaultContext
from resildrill.plugins import FaultRegistry

StepAction = Literal["revert", "inject", "manual"]
_ORDER: dict[str, int] = {"revert": 0, "inject": 1, "manual": 2}


@dataclass(frozen=True)
class Step:
    """One scheduled action: a fault injected or reverted, or a manual step asked."""

    at_s: float
    action: StepAction
    ref: str  # the fault's or manual step's id

    @property
    def order(self) -> tuple[float, int]:
        return (self.at_s, _ORDER[self.action])


@dataclass(frozen=True)
class StepPlan:
    """The drill's timeline: baseline, the steps, the recovery window after the last."""

    lead_s: float  # when the baseline starts (after the clinician load is up)
    baseline_end_s: float
    steps: tuple[Step, ...]
    last_step_s: float
    end_s: float  # the recovery window's end

    def held_by(self, late_s: float) -> StepPlan:
        """The plan after a manual step held the schedule ``late_s`` seconds: the whole
        recovery window is kept after the last step, however late the operator answered."""
        if late_s <= 0:
            return self
        return replace(self, last_step_s=self.last_step_s + late_s, end_s=self.end_s + late_s)

    def phase_at(self, t_s: float, any_fault_active: bool) -> str:
        """The phase a live view shows at ``t_s``."""
        if t_s < self.baseline_end_s:
            return "baseline"
        if any_fault_active:
            return "fault"
        return "recovery" if t_s >= self.last_step_s else "drill"


def scheduled_revert_offset(
    spec: FaultSpec, registry: FaultRegistry, ctx: FaultContext
) -> float | None:
    """When (offset from the baseline's end) the drill ends this fault, or None if it never
    does (the system heals itself, or the fault ends by its own action)."""
    if spec.duration is not None:
        return spec.at + spec.duration
    delay = registry.backend(spec.kind).revert_delay(spec, ctx)
    return None if delay is None else float(spec.at + delay)


def build_plan(
    spec: DrillSpec, registry: FaultRegistry, ctx: FaultContext, *, lead_s: float = 0.0
) -> StepPlan:
    """The plan of ``spec`` with its baseline starting at ``lead_s``."""
    base_end = lead_s + spec.phases.baseline
    steps: list[Step] = []
    for fault in spec.faults:
        steps.append(Step(base_end + fault.at, "inject", fault.id))
        revert_at = scheduled_revert_offset(fault, registry, ctx)
        if revert_at is not None:
            steps.append(Step(base_end + revert_at, "revert", fault.id))
    for step in spec.manual:
        steps.append(Step(base_end + step.at, "manual", step.id))
    steps.sort(key=lambda s: s.order)
    last = max((s.at_s for s in steps), default=base_end)
    return StepPlan(lead_s, base_end, tuple(steps), last, last + spec.phases.recovery)
