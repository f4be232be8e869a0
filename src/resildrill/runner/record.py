"""What a run measured and did: the runner's output, analysis's input.

A :class:`RunRecord` holds raw facts only (samples, marks, fault times, what load and the
integrity read-back returned); ``pipeline`` turns it into report.json. A crashed run's
record is rebuilt from its timeline and journal into the same shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resildrill.drill.loader import LoadedDrill
from resildrill.drill.model import FaultSpec
from resildrill.observe.metrics import TimeSeries
from resildrill.runner.timeline import Mark


@dataclass
class FaultRun:
    """One fault as it happened."""

    spec: FaultSpec
    counted_from: str  # "revert" or "inject"
    inject_requested_at_s: float | None = None
    injected_at_s: float | None = None
    revert_requested_at_s: float | None = None
    reverted_at_s: float | None = None
    recipe: dict[str, Any] | None = None
    error: str | None = None
    revert_detail: str | None = None
    still_injected: str | None = None  # undo hint when a revert could not be confirmed
    active: bool = False
    actions: list[dict[str, Any]] = field(default_factory=list)
    #: seconds spent around the stamps: preparing, the fsynced intent, the backend call
    timing: dict[str, float] = field(default_factory=dict)


@dataclass
class RunRecord:
    """Everything a run measured and did: the input of analysis and the report."""

    run_id: str
    run_dir: Path
    drill: LoadedDrill
    monotonic_t0: float
    wall_t0: float
    started_at: str
    series: TimeSeries
    marks: list[Mark] = field(default_factory=list)
    faults: list[FaultRun] = field(default_factory=list)
    manual: list[dict[str, Any]] = field(default_factory=list)
    baseline_end_s: float = 0.0
    end_s: float = 0.0
    status: str = "completed"  # completed | aborted | not_ready | error
    reason: str | None = None
    load: Any = None
    integrity: Any = None
    #: HL7 delivery read-back: one row per message the load sent (``load/delivery.py``).
    delivery: list[dict[str, Any]] | None = None
    halted_at_s: float | None = None
    notices: list[str] = field(default_factory=list)


@dataclass
class RunStatus:
    """What the live view shows each tick."""

    phase: str
    elapsed_s: float
    total_s: float
    active_faults: list[str]
    probe_health: dict[str, bool | None]


SteadyStateCheck = Callable[[RunRecord], str | None]
"""Returns None when the steady state held through the baseline, else why it did not."""
