"""The ``resildrill schema [drill|target]`` command: the JSON Schema of drill and target files.

The drill schema's ``faults`` is a union over the fault kinds registered right now, so a
plugin's fields complete and validate in an editor as the built-in ones do.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

HELP = """Print the JSON Schema of drill or target files (for editors and CI).

Editors that use yaml-language-server (VS Code's YAML extension, Neovim, Helix...)
complete and check a drill as you type when the schema is saved and named on the
file's first line:

\b
    resildrill schema drill --out schemas/drill.schema.json
    resildrill schema target --out schemas/target.schema.json

and then, at the top of a drill file:

\b
    # yaml-language-server: $schema=../schemas/drill.schema.json

(the path is relative to the YAML file). The fault kinds in the drill schema are the ones
installed now (see 'resildrill plugins'); run it again after adding a plugin.
'resildrill validate' remains the authority: it also checks references and timing.
"""


class Document(StrEnum):
    """Which file format to describe."""

    drill = "drill"
    target = "target"


def build_schema(document: str) -> dict[str, Any]:
    """The JSON Schema of ``drill`` or ``target`` files, faults from the registered kinds."""
    from resildrill.drill.loader import drill_model, target_model
    from resildrill.plugins import FaultRegistry

    if document == "target":
        schema = target_model().model_json_schema()
        title = "resildrill target (kind: Target)"
    else:
        schema = drill_model(FaultRegistry.discover()).model_json_schema()
        title = "resildrill drill (kind: Drill)"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": title}


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("schema", help=HELP)
    def _cmd(
        document: Annotated[
            Document, typer.Argument(help="which file format", show_default=True)
        ] = Document.drill,
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="write to this file, not stdout")
        ] = None,
    ) -> None:
        text = json.dumps(build_schema(document.value), indent=2, sort_keys=False) + "\n"
        if out is None:
            typer.echo(text, nl=False)
            return
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            typer.echo(f"resildrill: --out {out}: {exc.strerror or exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"wrote {out}", err=True)
