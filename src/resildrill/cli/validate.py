"""The ``resildrill validate FILE...`` command: check drill and target files, touch nothing.

Prints every problem as ``file:line:col: path: message`` (warnings carry ``warning:``
before the message), file names exactly as given. Exit 2 when any error was found, else 0
with ``ok: N file(s)`` on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

HELP = """Check drill and target files (kind: Drill / kind: Target) without running anything.

Every problem is printed on its own line as FILE:LINE:COL: PATH: MESSAGE, for example
drills/x.yaml:12:9: faults[0].duration: duration '90' needs a unit. A drill's target file
is checked too. Warnings (such as overlapping faults) are printed but do not fail.

Exit code: 0 when every file is valid, 2 when any has an error.
"""


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("validate", help=HELP)
    def _cmd(
        files: list[Path] = typer.Argument(  # noqa: B008 - typer's declaration style
            ..., metavar="FILE...", help="drill or target files", show_default=False
        ),
    ) -> None:
        raise typer.Exit(validate_files([str(f) for f in files]))


def validate_files(files: list[str]) -> int:
    """Validate each file, print its problems, and return the exit code (0 or 2)."""
    from resildrill.drill.loader import LoadedDrill, load_document
    from resildrill.errors import InvalidInput, Problem
    from resildrill.plugins import FaultRegistry

    registry = FaultRegistry.discover()
    printed: set[str] = set()
    errors = 0

    def emit(problems: list[Problem]) -> None:
        nonlocal errors
        # A target named by a drill and also given on the command line is reported once.
        for problem in problems:
            line = str(problem)
            if line not in printed:
                printed.add(line)
                errors += problem.severity == "error"
                print(line)

    for name in files:
        try:
            loaded = load_document(name, registry)
        except InvalidInput as exc:
            emit(exc.problems)
            errors += not exc.problems  # an error without a location still fails the run
            continue
        emit(loaded.warnings)
        if isinstance(loaded, LoadedDrill):
            emit(loaded.target.warnings)
    sys.stdout.flush()
    if errors:
        print(f"resildrill: {errors} error(s) in {len(files)} file(s)", file=sys.stderr)
        return 2
    print(f"ok: {len(files)} file(s)", file=sys.stderr)
    return 0
