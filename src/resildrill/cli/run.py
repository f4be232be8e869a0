"""The ``resildrill run`` command: preflight, run, analyse, write reports, exit code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from resildrill.errors import InvalidInput


def run_drill_file(
    drill_path: Path,
    *,
    out: Path,
    preflight_only: bool = False,
    yes: bool = False,
    allow_production: bool = False,
    live: bool | None = None,
    history: bool = True,
) -> int:
    """Run a drill file end to end through the library API, with the live view; returns
    the exit code."""
    from resildrill.api import run_drill
    from resildrill.cli.output import LiveView, console, print_result

    with LiveView(live) as view:
        result = run_drill(
            drill_path,
            out=out,
            yes=yes,
            allow_production=allow_production,
            history=history,
            preflight_only=preflight_only,
            on_status=view.status,
            on_message=view.message,
            terminal=sys.stdin,
        )
    if result is None:
        console.print("preflight ok: every fault can be injected and reverted")
        return 0
    if result.render_error:
        console.print(
            f"warning: could not render HTML/JUnit/Markdown ({result.render_error}); "
            f"report.json is complete: resildrill report {result.run_dir}"
        )
    print_result(result.report.model_dump(mode="json", by_alias=True))
    console.print(f"report: {result.report_path}")
    for p in result.rendered:
        console.print(f"        {p}")
    print(result.run_dir)
    return result.exit_code


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("run")
    def run(
        drill: Annotated[Path, typer.Argument(help="the drill file (kind: Drill)")],
        out: Annotated[
            Path, typer.Option("--out", help="folder that receives reports/<run id>/")
        ] = Path("reports"),
        preflight: Annotated[
            bool,
            typer.Option(
                "--preflight", help="check every fault can be injected and reverted; inject nothing"
            ),
        ] = False,
        yes: Annotated[
            bool, typer.Option("--yes", "-y", help="answer manual steps at once (CI)")
        ] = False,
        allow_production: Annotated[
            bool, typer.Option("--allow-production", help="permit a production target")
        ] = False,
        history: Annotated[
            bool,
            typer.Option(
                "--history/--no-history",
                help="append the run to the run history ($RESILDRILL_HISTORY)",
            ),
        ] = True,
    ) -> None:
        """Run a drill: baseline, inject each fault, revert it, watch recovery, write reports.

        Exit codes: 0 passed, 1 a gate failed, 2 bad input, 3 aborted, 4 a fault could not be
        reverted (the message says how to undo it), 5 target not ready, 6 tool failure.
        The run folder (report.json, report.html, junit.xml, summary.md, journal.jsonl,
        timeline.jsonl) is printed on stdout.
        """
        if not drill.exists():
            raise InvalidInput(f"{drill}: no such file")
        code = run_drill_file(
            drill,
            out=out,
            preflight_only=preflight,
            yes=yes,
            allow_production=allow_production,
            history=history,
        )
        sys.stdout.flush()
        raise typer.Exit(code)
