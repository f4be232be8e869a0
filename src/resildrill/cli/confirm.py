"""The ``resildrill confirm`` command: answer a running drill's manual step from anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from resildrill.errors import InvalidInput


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("confirm")
    def confirm(
        run: Annotated[str, typer.Argument(help="run id (or prefix) or run folder")],
        step: Annotated[str, typer.Argument(help="id of the drill's manual step")],
    ) -> None:
        """Tell a running drill that the operator has done a manual step.

        The runner prints the exact command when the step starts, e.g.
        `resildrill confirm gateway-loss-20261126T0800Z-1a2b call-ward`. Works for runs
        with no terminal (CI, a run started by a scheduler); on the runner's own terminal,
        Enter does the same. A step may be confirmed before it starts.
        """
        from resildrill.runner.operator import confirm_file
        from resildrill.runner.registry import find_run

        entry = find_run(run)
        if entry is None:
            raise InvalidInput(f"confirm: no active run matches {run!r}")
        known = entry.get("manual") or []
        if step not in known:
            listed = ", ".join(known) or "none"
            raise InvalidInput(
                f"confirm: run {entry['run_id']} has no manual step {step!r} (steps: {listed})"
            )
        path = confirm_file(Path(entry["run_dir"]), step)
        path.parent.mkdir(exist_ok=True)
        path.write_text("confirmed\n")
        typer.echo(f"confirmed {step} for {entry['run_id']}")
