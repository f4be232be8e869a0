"""The ``resildrill proxy`` command: the embedded Toxiproxy-compatible server, in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command(
        "proxy",
        help=(
            "Run the Toxiproxy-compatible proxy server (HTTP API on --host:--port) in the "
            "foreground until SIGTERM or Ctrl-C. --config loads a JSON array of proxies, as "
            "POST /populate takes; --seed makes toxicity, jitter and slicer draws repeatable."
        ),
    )
    def _cmd(
        host: Annotated[str, typer.Option(help="address the API binds to")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="API port (0: any free port)")] = 8474,
        config: Annotated[
            Path | None, typer.Option(help="JSON array of proxies to create at start")
        ] = None,
        seed: Annotated[int | None, typer.Option(help="seed of every random draw")] = None,
        toxic_max_lifetime: Annotated[
            float,
            typer.Option(help="seconds after which toxics named resildrill-* are removed"),
        ] = 3600.0,
        token_env: Annotated[
            str | None,
            typer.Option(help="environment variable holding a bearer token the API requires"),
        ] = None,
        upstreams_file: Annotated[
            Path | None,
            typer.Option(help="JSON list of the only upstreams proxies may point at"),
        ] = None,
        allow_remote: Annotated[
            bool,
            typer.Option(help="serve the API beyond loopback (needs --token-env)"),
        ] = False,
    ) -> None:
        from resildrill.proxy import run

        run(
            host,
            port,
            config,
            seed,
            toxic_max_lifetime,
            token_env=token_env,
            upstreams_file=upstreams_file,
            allow_remote=allow_remote,
        )
