"""The ``resildrill runs`` command: which drills are running on this machine now."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("runs")
    def runs(
        as_json: Annotated[bool, typer.Option("--json", help="one JSON list")] = False,
    ) -> None:
        """List the drills running on this machine: run id, drill, target, runner pid.

        A run whose runner is gone is marked 'runner gone': its watchdog reverts its
        faults, and `resildrill rollback --all` does it by hand. Use a run id (or a unique
        prefix) with `resildrill abort RUN` or `resildrill confirm RUN STEP`.
        """
        from resildrill.runner.registry import active_runs

        entries = active_runs()
        if as_json:
            typer.echo(json.dumps(entries, indent=1, default=str))
            return
        if not entries:
            typer.echo("no drill is running")
            return
        for e in entries:
            state = "running" if e["alive"] else "runner gone"
            steps = ", ".join(e.get("manual") or []) or "-"
            typer.echo(
                f"{e['run_id']}  {state}  pid {e['pid']}  drill {e.get('drill', '?')}  "
                f"target {e.get('target', '?')}  manual steps: {steps}\n    {e['run_dir']}"
            )
