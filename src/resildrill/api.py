"""The library API: what ``resildrill run`` does, callable from Python.

    from resildrill import run_drill
    result = run_drill("drills/gateway-loss.yaml", out="reports")
    result.exit_code, result.report.summary, result.run_dir

:func:`run_drill` loads and validates the drill, refuses a production target unless
allowed (with an approval), preflights every fault, runs, analyses, writes report.json and
its renderings, and appends the run to the history: the same steps, guards and exit codes
as the CLI, which calls it. Bad input raises :class:`~resildrill.errors.InvalidInput`
(exit 2), a failed preflight :class:`~resildrill.errors.TargetNotReady` (5) or
:class:`~resildrill.errors.ToolFailed` (6); a run that went ahead returns its result
whatever its outcome.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from resildrill.drill.loader import LoadedDrill, load_drill
from resildrill.errors import (
    InvalidInput,
    ProductionRefused,
    TargetNotReady,
    ToolFailed,
    ToolProblem,
)
from resildrill.history import apply_history, record_run
from resildrill.plugins import FaultRegistry
from resildrill.report import render_all
from resildrill.report.model import DrillReport
from resildrill.runner.drill_run import RunOptions, RunParts
from resildrill.runner.record import RunStatus
from resildrill.runner.runner import DrillRunner


@dataclass(frozen=True)
class DrillResult:
    """A finished run: its typed report, where it was written, and the exit code."""

    report: DrillReport
    run_dir: Path
    #: HTML, JUnit and Markdown written next to report.json
    rendered: list[Path] = field(default_factory=list)
    #: why a rendering could not be written (report.json is complete regardless)
    render_error: str | None = None

    @property
    def exit_code(self) -> int:
        return self.report.exit_code

    @property
    def report_path(self) -> Path:
        return self.run_dir / "report.json"


def load(path: str | os.PathLike[str], registry: FaultRegistry | None = None) -> LoadedDrill:
    """Load and validate a drill and its target (InvalidInput names file:line:col)."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    return load_drill(path, registry or FaultRegistry.discover())


def refuse_production(drill: LoadedDrill, allow_production: bool) -> None:
    """Drills run against staging: a production target needs the option and an approval."""
    target = drill.target.spec
    if target.environment != "production":
        return
    if not allow_production:
        raise ProductionRefused(
            f"{drill.target.path}: target {target.name!r} is a production system; "
            "drills run against staging (use --allow-production only with an approval)"
        )
    if not target.approved_by:
        raise ProductionRefused(
            f"{drill.target.path}: --allow-production needs the target to name who approved "
            "the drill ('approved_by')"
        )


def preflight(runner: DrillRunner) -> None:
    """Raise when a fault could not be injected and reverted; touches nothing."""
    problems = runner.preflight()
    if not problems:
        return
    text = "preflight failed, nothing injected:\n" + "\n".join(f"  {p}" for p in problems)
    # a backend the tool cannot reach is the tool's failure (6), not the target's (5)
    if any(isinstance(p, ToolProblem) for p in problems):
        raise ToolFailed(text)
    raise TargetNotReady(text)


def run_drill(
    path: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] = "reports",
    yes: bool = False,
    allow_production: bool = False,
    history: bool = True,
    preflight_only: bool = False,
    on_status: Callable[[RunStatus], None] | None = None,
    on_message: Callable[[str], None] | None = None,
    terminal: TextIO | None = None,
    parts: RunParts | None = None,
    registry: FaultRegistry | None = None,
) -> DrillResult | None:
    """Run a drill file end to end, as ``resildrill run`` does; None with ``preflight_only``.

    ``yes`` answers manual steps at once; ``history`` appends the run to
    ``$RESILDRILL_HISTORY`` (its trend and regression gate are read either way);
    ``parts`` replaces the clock, sampler and watchdog (``resildrill.testing``).
    """
    from resildrill import pipeline

    registry = registry or FaultRegistry.discover()
    drill = load(path, registry)
    for w in drill.warnings:
        if on_message is not None:
            on_message(str(w))
    refuse_production(drill, allow_production)
    options = RunOptions(yes=yes, steady_state=pipeline.steady_state_check, terminal=terminal)
    if on_status is not None:
        options.on_status = on_status
    if on_message is not None:
        options.on_message = on_message
    runner = DrillRunner(drill, registry=registry, out_dir=Path(out), options=options, parts=parts)
    preflight(runner)
    if preflight_only:
        return None
    record = runner.run()
    analysis = pipeline.judge(record)
    doc = pipeline.build_report(record, analysis, registry=registry)
    # The regression gate compares with the runs before this one, so read before appending.
    doc = apply_history(doc, drill.spec.gates.regression)
    pipeline.write_json(doc, record.run_dir)
    if history:
        record_run(doc, record.run_dir / "report.json")
    return _rendered(doc, record.run_dir)


def _rendered(doc: dict[str, Any], run_dir: Path) -> DrillResult:
    """Render HTML, JUnit and Markdown next to report.json, which is already on disk: a
    renderer failing never loses a measured drill (``resildrill report`` renders again)."""
    from pydantic import ValidationError

    report = DrillReport.model_validate(doc)
    try:
        return DrillResult(report, run_dir, list(render_all(report, run_dir)))
    except (ValidationError, OSError) as exc:
        return DrillResult(report, run_dir, [], str(exc))
