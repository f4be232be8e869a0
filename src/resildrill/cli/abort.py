"""The ``resildrill abort`` command: stop a running drill cleanly from another terminal."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from resildrill.errors import InvalidInput


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("abort")
    def abort(
        run: Annotated[str, typer.Argument(help="run id (or prefix) or run folder")],
        reason: Annotated[str, typer.Option(help="recorded in the report")] = "operator abort",
        wait: Annotated[float, typer.Option(help="seconds to wait for the run to stop")] = 30.0,
    ) -> None:
        """Ask a running drill to revert its faults and stop (it exits 3).

        `resildrill runs` lists the running drills and their ids. The drill's runner
        reverts what it injected, writes its report and exits; this command waits for it.
        """
        from resildrill.runner.registry import find_run

        entry = find_run(run)
        if entry is None:
            raise InvalidInput(f"abort: no active run matches {run!r}")
        (Path(entry["run_dir"]) / "ABORT").write_text(reason + "\n")
        typer.echo(f"abort requested for {entry['run_id']}")
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if find_run(entry["run_id"]) is None:
                typer.echo(f"{entry['run_id']} stopped; faults reverted")
                raise typer.Exit(0)
            time.sleep(0.1)
        typer.echo(f"{entry['run_id']} has not stopped after {wait:g}s", err=True)
        raise typer.Exit(6)
