"""The ``resildrill plugins`` command: fault kinds found and where they came from."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("plugins")
    def plugins() -> None:
        """List the fault kinds, write verifiers and stack kinds installed, and where each
        came from.

        Third-party ones register the same way as the built-in ones, in their own
        pyproject.toml: [project.entry-points."resildrill.faults"] mykind = "pkg.mod:Backend"
        (also "resildrill.verifiers" and "resildrill.stacks"; docs/plugins.md).
        """
        from importlib.metadata import entry_points

        from resildrill.plugins import FaultRegistry

        typer.echo("fault kinds (resildrill.faults):")
        registry = FaultRegistry.discover()
        for info in registry.infos:
            status = "ok" if info.error is None else f"BROKEN: {info.error}"
            typer.echo(f"  {info.kind:16} {info.value:45} from {info.distribution:12} {status}")
        for group, title in (
            ("resildrill.verifiers", "write verifiers"),
            ("resildrill.stacks", "stack kinds"),
        ):
            typer.echo(f"{title} ({group}):")
            for ep in sorted(entry_points(group=group), key=lambda e: e.name):
                dist = ep.dist.name if ep.dist is not None else "?"
                typer.echo(f"  {ep.name:16} {ep.value:45} from {dist}")
