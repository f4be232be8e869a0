"""The ``resildrill plugins`` command: fault kinds found and where they came from."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("plugins")
    def plugins() -> None:
        """List fault kinds registered under the `resildrill.faults` entry-point group.

        Third-party kinds register the same way as the built-in ones, in their own
        pyproject.toml: [project.entry-points."resildrill.faults"] mykind = "pkg.mod:Backend".
        """
        from resildrill.plugins import FaultRegistry

        registry = FaultRegistry.discover()
        for info in registry.infos:
            status = "ok" if info.error is None else f"BROKEN: {info.error}"
            typer.echo(f"{info.kind:10} {info.value:45} from {info.distribution:12} {status}")
