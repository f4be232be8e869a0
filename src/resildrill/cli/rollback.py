"""The ``resildrill rollback`` command: undo what a crashed run left injected."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from resildrill.errors import InvalidInput


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("rollback")
    def rollback(
        journal: Annotated[
            Path | None,
            typer.Argument(help="a run's journal.jsonl, or its run folder"),
        ] = None,
        all_: Annotated[
            bool,
            typer.Option(
                "--all",
                help="every journal under --out, and every run on this machine, whose runner "
                "is gone",
            ),
        ] = False,
        out: Annotated[Path, typer.Option("--out", help="where --all looks")] = Path("reports"),
    ) -> None:
        """Revert every fault a journal says is still injected, newest first.

        Works from the journal alone (no drill or target file needed). Idempotent: a second
        rollback says "nothing to do". Every hop the run routed through a Toxiproxy API is
        then checked by opening a connection through it (an embedded proxy that is gone is
        started again; it is never stopped). Exit 0 nothing left injected and every path
        carries traffic, 4 something could not be reverted or a path is still cut (each with
        the command that undoes it), 2 unreadable journal.
        """
        from resildrill.plugins import FaultRegistry
        from resildrill.runner.journal import JournalUntrusted
        from resildrill.runner.registry import (
            active_runs,
            journals_without_runner,
            unregister_run,
        )
        from resildrill.runner.rollback import rollback_journal

        if journal is None and not all_:
            raise InvalidInput("rollback: give a JOURNAL (or run folder), or --all")
        paths: list[Path] = []
        if journal is not None:
            path = journal / "journal.jsonl" if journal.is_dir() else journal
            if not path.exists():
                raise InvalidInput(f"{journal}: no journal here")
            paths.append(path)
        if all_:
            chosen = {p.resolve() for p in paths}
            paths += [p for p in journals_without_runner(out) if p not in chosen]
        dead = {Path(r["run_dir"]).resolve(): r["run_id"] for r in active_runs() if not r["alive"]}
        registry = FaultRegistry.discover()
        code = 0
        for path in paths:
            try:
                result = rollback_journal(path, registry)
            except JournalUntrusted as exc:
                typer.echo(f"resildrill: {exc}", err=True)
                code = max(code, 2)
                continue
            run_id = dead.get(path.parent.resolve())
            if run_id is not None and result.exit_code == 0:
                unregister_run(run_id)  # nothing of it is left injected: no longer a run
            if result.nothing_to_do:
                typer.echo(f"{path}: nothing to do")
            for line in result.reverted:
                typer.echo(f"{path}: reverted {line}")
            for fault_id, detail, hint in result.still_injected:
                typer.echo(f"{path}: STILL INJECTED {fault_id}: {detail}; undo with: {hint}")
            for check in result.paths:
                typer.echo(f"{path}: {check.describe()}")
            code = max(code, result.exit_code)
        raise typer.Exit(code)
