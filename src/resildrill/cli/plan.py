"""The ``resildrill plan`` command: the timeline a drill would run, touching nothing.

It prints the same :class:`~resildrill.runner.plan.StepPlan` the runner executes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("plan")
    def plan(drill: Annotated[Path, typer.Argument(help="the drill file (kind: Drill)")]) -> None:
        """Print the drill's steps with their times (seconds from the baseline's start);
        touch nothing. With clinician load, the run starts the load first and every time
        shifts by its start-up (the report's baseline_end_s has the real figure)."""
        from resildrill.clock import MonotonicClock
        from resildrill.drill.loader import load_drill
        from resildrill.faults.base import FaultContext
        from resildrill.plugins import FaultRegistry
        from resildrill.runner.plan import build_plan

        registry = FaultRegistry.discover()
        loaded = load_drill(drill, registry)
        spec = loaded.spec
        ctx = FaultContext(loaded.target.spec, loaded.target.path.parent, "plan", MonotonicClock())
        steps = build_plan(spec, registry, ctx)
        faults = {f.id: f for f in spec.faults}
        manual = {m.id: m for m in spec.manual}
        rows: list[tuple[float, int, str]] = [
            (0.0, 0, "baseline starts (steady state must hold)"),
            (steps.baseline_end_s, 0, "baseline ends; faults may start"),
        ]
        for step in steps.steps:
            if step.action == "manual":
                m = manual[step.ref]
                text = f"manual step {m.id}: {m.prompt} (timeout {m.timeout:g}s)"
            elif step.action == "revert":
                text = f"revert {step.ref}"
            else:
                f = faults[step.ref]
                what = getattr(f, "action", None) or f.kind
                on = getattr(f, "service", None) or getattr(f, "proxy", None) or ""
                heals = registry.backend(f.kind).self_heals(f, ctx)
                counted = "injection (the system heals itself)" if heals else "the revert"
                rows.append((step.at_s, 1, f"inject {f.id}: {what} {on}".rstrip()))
                text = f"  recovery of {f.id} counted from {counted}"
            rows.append((step.at_s, 1, text))
        rows.append((steps.end_s, 2, "recovery window ends; integrity check"))
        target = loaded.target.spec
        typer.echo(f"drill {spec.name} against {target.name} ({target.environment})")
        typer.echo(f"slo_window {spec.slo_window:g}s, stability_window {spec.stability_window:g}s")
        if spec.load is not None:
            typer.echo("clinician load starts first: times below follow its start-up")
        for at, _order, text in sorted(rows, key=lambda r: (r[0], r[1])):
            typer.echo(f"  {at:8.1f}s  {text}")
        # Backends acting over time (heat) add their own schedule table and warnings.
        for f in spec.faults:
            at = steps.baseline_end_s + f.at
            for line in registry.backend(f.kind).plan_table(f, ctx, at):
                typer.echo(line)
