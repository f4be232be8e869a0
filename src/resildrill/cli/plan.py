"""The ``resildrill plan`` command: the timeline a drill would run, touching nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("plan")
    def plan(drill: Annotated[Path, typer.Argument(help="the drill file (kind: Drill)")]) -> None:
        """Print the drill's steps with their times (seconds from the start); touch nothing."""
        from resildrill.clock import MonotonicClock
        from resildrill.drill.loader import load_drill
        from resildrill.faults.base import FaultContext
        from resildrill.plugins import FaultRegistry
        from resildrill.runner.runner import scheduled_revert_offset

        registry = FaultRegistry.discover()
        loaded = load_drill(drill, registry)
        spec = loaded.spec
        ctx = FaultContext(loaded.target.spec, loaded.target.path.parent, "plan", MonotonicClock())
        base = spec.phases.baseline
        rows: list[tuple[float, str]] = [(0.0, "baseline starts (steady state must hold)")]
        last = base
        for f in spec.faults:
            backend = registry.backend(f.kind)
            what = getattr(f, "action", None) or f.kind
            on = getattr(f, "service", None) or getattr(f, "proxy", None) or ""
            rows.append((base + f.at, f"inject {f.id}: {what} {on}".rstrip()))
            last = max(last, base + f.at)
            rev = scheduled_revert_offset(f, backend, ctx)
            heals = backend.self_heals(f, ctx)
            if rev is not None:
                rows.append((base + rev, f"revert {f.id}"))
                last = max(last, base + rev)
            counted = "injection (the system heals itself)" if heals else "the revert"
            rows.append((base + f.at, f"  recovery of {f.id} counted from {counted}"))
        for m in spec.manual:
            rows.append((base + m.at, f"manual step {m.id}: {m.prompt} (timeout {m.timeout:g}s)"))
            last = max(last, base + m.at)
        rows.append((base, "baseline ends; faults may start"))
        rows.append((last + spec.phases.recovery, "recovery window ends; integrity check"))
        typer.echo(
            f"drill {spec.name} against {loaded.target.spec.name} "
            f"({loaded.target.spec.environment})"
        )
        typer.echo(f"slo_window {spec.slo_window:g}s, stability_window {spec.stability_window:g}s")
        for at, text in sorted(rows, key=lambda r: r[0]):
            typer.echo(f"  {at:8.1f}s  {text}")
        # Backends acting over time (heat) add their own schedule table and warnings.
        for f in spec.faults:
            table = getattr(registry.backend(f.kind), "plan_table", None)
            if callable(table):
                for line in table(f, ctx, base + f.at):
                    typer.echo(line)
