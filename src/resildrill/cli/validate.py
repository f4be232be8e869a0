"""The ``resildrill validate FILE...`` command: check drill and target files, touch nothing.

Prints every problem as ``file:line:col: path: message`` (warnings carry ``warning:``
before the message), file names exactly as given. Exit 2 when any error was found, else 0
with ``ok: N file(s)`` on stderr. A folder given stands for the YAML files in it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

HELP = """Check drill and target files (kind: Drill / kind: Target) without running anything.

Every problem is printed on its own line as FILE:LINE:COL: PATH: MESSAGE, for example
"drills/x.yaml:12:9: faults[0].duration: duration 90 needs a unit, like 500ms, 30s or 5m".
A drill's target file is checked too. Warnings (such as overlapping faults) are printed
but do not fail. A folder stands for the *.yaml files in it.

Exit code: 0 when every file is valid, 2 when any has an error.
"""


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("validate", help=HELP)
    def _cmd(
        files: Annotated[
            list[Path],
            typer.Argument(
                metavar="FILE",
                help="drill or target files, or folders of them",
                show_default=False,
            ),
        ],
    ) -> None:
        names = expand(files)
        if not names:
            # An empty folder must not pass a CI gate as "ok: 0 file(s)".
            typer.echo("resildrill: no .yaml files found in the given folders", err=True)
            raise typer.Exit(2)
        raise typer.Exit(validate_files(names))


def expand(paths: list[Path]) -> list[str]:
    """Files as given; a folder stands for the ``*.yaml`` and ``*.yml`` files in it."""
    names: list[str] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
            names += [str(p) for p in found if p.is_file()]
        else:
            names.append(str(path))
    return names


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
