"""The ``resildrill target up|down|status TARGET.yaml`` commands (bundled ward EHR stacks).

A thin adapter over the target's stack driver (:mod:`resildrill.stacks`; the bundled ward
EHR registers ``ward-ehr`` and ``ward-ehr-docker``): it parses, calls one function, prints,
and maps errors to their exit codes (2 bad input, 6 tool failed) as one line, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from resildrill.errors import ResildrillError

T = TypeVar("T")

TargetArg = Annotated[Path, typer.Argument(help="a target file with a 'stack: {kind: ward-ehr}'")]


def _run(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ResildrillError as exc:
        typer.echo(f"resildrill: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except OSError as exc:
        typer.echo(f"resildrill: {exc}", err=True)
        raise typer.Exit(6) from None


def register(app: typer.Typer) -> None:
    """Add the ``target`` sub-commands to the app."""
    target_app = typer.Typer(
        help="Start, stop and inspect a bundled staging system (the ward EHR).",
        no_args_is_help=True,
    )

    @target_app.command("up", help="Start the stack and wait until every service is healthy.")
    def _up(
        target: TargetArg,
        timeout: Annotated[float, typer.Option(help="seconds to wait for health")] = 60.0,
    ) -> None:
        stack = _stack_for(target)
        proxy_url = _run(lambda: _proxy_up(target, stack))
        if proxy_url:
            typer.echo(f"network hops through the Toxiproxy API at {proxy_url}")
        if stack is None:
            if not proxy_url:
                typer.echo(
                    f"resildrill: {target}: stack: the target declares no 'stack' (such as "
                    "'kind: ward-ehr') and no embedded toxiproxy: nothing for 'target up' "
                    "to start",
                    err=True,
                )
                raise typer.Exit(2)
            typer.echo("no stack declared: only the embedded proxy is managed here")
            return

        current = _run(lambda: stack.up(target, timeout_s=timeout))
        if current.started is False:
            typer.echo("already running (left as it was)")
        _print_status(current)
        files = current.files or {
            "pidfiles": current.run_dir / "pids",
            "logs": current.run_dir / "logs",
        }
        width = max(len(label) for label in files) + 1
        for label, path in files.items():
            typer.echo(f"{label + ':':<{width}} {path}")

    @target_app.command("down", help="Stop every process of the stack (idempotent).")
    def _down(target: TargetArg) -> None:
        stack = _stack_for(target)

        stopped = [] if stack is None else _run(lambda: stack.down(target))
        if _run(lambda: _proxy_down(target, stack)):
            stopped = [*stopped, "toxiproxy"]
        typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")

    @target_app.command("status", help="Show each service's pid, state and health.")
    def _status(target: TargetArg) -> None:
        stack = _stack_for(target)
        if stack is None:
            typer.echo("no stack declared: nothing to show")
            return

        current = _run(lambda: stack.status(target))
        _print_status(current)

    app.add_typer(target_app, name="target")


def _proxy_up(target: Path, stack: Any) -> str | None:
    """Start the target's embedded Toxiproxy server first: its hops run through it."""
    from resildrill.drill.loader import load_target
    from resildrill.faults.embedded_proxy import ensure_embedded_proxy, proxy_home

    loaded = load_target(target)
    if loaded.spec.toxiproxy is None:
        return None
    return ensure_embedded_proxy(loaded.spec, proxy_home(loaded.spec, loaded.path.parent))


def _proxy_down(target: Path, stack: Any) -> bool:
    """Stop the target's embedded proxy, whoever started it (``target up`` or a run);
    never an external Toxiproxy."""
    from resildrill.drill.loader import load_target
    from resildrill.faults.embedded_proxy import proxy_home, stop_embedded_proxy

    loaded = load_target(target)
    if loaded.spec.toxiproxy is None:
        return False
    return stop_embedded_proxy(proxy_home(loaded.spec, loaded.path.parent))


def _stack_for(target: Path) -> Any:
    """The driver of the target's ``stack:`` (resildrill.stacks: an installed stack kind,
    such as the bundled ward EHR), or None for a target with no stack (only its embedded
    proxy is managed then)."""
    from resildrill.drill.loader import load_target
    from resildrill.stacks import stack_driver

    declared = _run(lambda: load_target(target)).spec.stack
    if declared is None:
        return None
    return _run(lambda: stack_driver(str(declared.get("kind")), str(target)))


def _print_status(current: object) -> None:
    from resildrill.stacks import StackStatus

    assert isinstance(current, StackStatus)
    typer.echo(f"target {current.target}  (run folder {current.run_dir})")
    typer.echo(f"  {'service':<11} {'pid':>7}  {'state':<8} {'health':<8} {'restarts':>8}  address")
    for s in current.services:
        health = {True: "ok", False: "FAIL", None: "-"}[s.healthy]
        restarts = "-" if s.restarts is None else str(s.restarts)
        typer.echo(
            f"  {s.name:<11} {s.pid or '-':>7}  {s.state:<8} {health:<8} {restarts:>8}  "
            f"{s.address or ''}"
        )
