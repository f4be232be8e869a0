"""The `resildrill proxy` command (not built yet)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("proxy", help="(not built yet)", hidden=True)
    def _cmd() -> None:
        raise typer.Exit(6)
