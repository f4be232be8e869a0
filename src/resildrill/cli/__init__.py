"""The ``resildrill`` command: one verb per job, each in its own module.

Each command module exposes ``register(app)``. Commands import heavy parts (runner,
backends, renderers) inside their function bodies so ``resildrill --help`` stays fast.
Errors from the library arrive as :class:`~resildrill.errors.ResildrillError`; ``main``
prints their message (never a traceback) and exits with the class's code.
"""

from __future__ import annotations

import importlib
import sys

import typer

from resildrill.errors import InvalidInput, ResildrillError

app = typer.Typer(
    name="resildrill",
    help=(
        "Resilience drills for clinical IT systems.\n\n"
        "A drill (YAML) injects faults into a STAGING system while probes and clinician "
        "load measure, to 0.1 s, how long clinicians were affected and how long the system "
        "took to recover.\n\n"
        "Start with:  resildrill demo            (a real drill on the bundled ward EHR)\n\n"
        "Then:        resildrill validate drills/*.yaml\n\n"
        "             resildrill plan drills/gateway-loss.yaml\n\n"
        "             resildrill run drills/gateway-loss.yaml"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_COMMAND_MODULES = (
    "validate",
    "schema",
    "plan",
    "run",
    "runs",
    "abort",
    "confirm",
    "rollback",
    "report",
    "plugins",
    "target",
    "demo",
    "proxy",
    "history",
    "compare",
)

for _name in _COMMAND_MODULES:
    importlib.import_module(f"resildrill.cli.{_name}").register(app)


def main() -> None:
    """Entry point of the console script: run the app, map errors to exit codes."""
    try:
        app(standalone_mode=True)
    except InvalidInput as exc:
        # Located problems print bare, one per line: file:line:col: path: message.
        print(str(exc), file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except ResildrillError as exc:
        print(f"resildrill: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        print("resildrill: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
