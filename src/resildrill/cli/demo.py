"""The ``resildrill demo`` command: the bundled ward EHR up, a short real drill, down again."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from resildrill.errors import InvalidInput

#: The repository's drills/ folder (present in a clone or an editable install).
REPO_DRILLS = Path(__file__).resolve().parents[3] / "drills"
#: The same demo drill and ward EHR target, shipped inside the package (pip install).
BUNDLED = Path(__file__).resolve().parents[1] / "demo"


def default_demo_drill() -> Path:
    """drills/demo.yaml in a clone; else the packaged copy, laid out in the state folder
    (its target's pidfiles and database go there too, never into site-packages)."""
    repo = REPO_DRILLS / "demo.yaml"
    if repo.exists():
        return repo
    from resildrill.statehome import state_home

    home = state_home() / "demo"
    home.mkdir(parents=True, exist_ok=True)
    for name in ("drill.yaml", "target.yaml"):
        (home / name).write_text((BUNDLED / name).read_text())
    return home / "drill.yaml"


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("demo")
    def demo(
        drill: Annotated[
            Path | None,
            typer.Option(
                help="the drill to run against the bundled system "
                "[default: drills/demo.yaml, or its installed copy]"
            ),
        ] = None,
        out: Annotated[Path, typer.Option(help="folder for reports/<run id>/")] = Path("reports"),
        keep_up: Annotated[
            bool, typer.Option("--keep-up", help="leave the ward EHR running afterwards")
        ] = False,
    ) -> None:
        """Start the bundled ward EHR, run a short drill that loses its gateway, stop it.

        The gateway (the clinicians' entry point) is killed; its supervisor restarts it after
        a delay; the report gives the outage and the time to recover, to 0.1 s. Prints the
        report folder on stdout. Everything binds to 127.0.0.1 and uses synthetic patients.
        """
        from resildrill.cli.output import console
        from resildrill.cli.run import run_drill_file
        from resildrill.drill.loader import load_drill
        from resildrill.plugins import FaultRegistry
        from resildrill.stacks import stack_driver

        drill = drill or default_demo_drill()
        if not drill.exists():
            raise InvalidInput(f"--drill: {drill}: no such file")
        loaded = load_drill(drill, FaultRegistry.discover())
        declared = loaded.target.spec.stack or {}
        stack = stack_driver(str(declared.get("kind")), str(loaded.target.path))
        console.print(f"starting the bundled system: {loaded.target.spec.name}")
        status = stack.up(loaded.target)
        if status.started is False:
            console.print("the bundled system was already running: it is left running afterwards")
        try:
            code = run_drill_file(drill, out=out, yes=True)
        finally:
            # Stop only what this demo started: never someone else's running system.
            if status.started and not keep_up:
                console.print("stopping the bundled system")
                stack.down(loaded.target)
        raise typer.Exit(code)
