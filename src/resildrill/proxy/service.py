"""Running the proxy as a process: options, the ``--config`` file, signals, the ready line.

``resildrill proxy`` and ``python -m resildrill.proxy`` both end up in :func:`run`. Once the
API is listening, one JSON line goes to stdout (``{"event": "listening", "url": ..., "seed":
..., "pid": ...}``) so a parent that asked for port 0 learns the real one. SIGTERM and SIGINT
stop every proxy, closing its connections, then exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import resource
import signal
import sys
from pathlib import Path

from aiohttp import web

from resildrill.proxy.api import ToxiproxyApi, decode_body
from resildrill.proxy.server import DEFAULT_TOXIC_MAX_LIFETIME_S, ApiError, ProxyServer

log = logging.getLogger("resildrill.proxy")


def _raise_fd_limit() -> None:
    # Each proxied connection holds two sockets and up to four pipe ends.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _load_config(api: ToxiproxyApi, path: Path) -> None:
    """Create the proxies of a ``/populate``-style JSON file; problems are logged, as upstream."""
    try:
        body = path.read_bytes()
    except OSError as exc:
        log.error("config %s unreadable: %s", path, exc)
        return
    try:
        status, payload = await api.apply_populate(decode_body(body))
    except ApiError as exc:
        status, payload = exc.status, {"error": exc.message}
    if status >= 300:
        log.error("config %s: %s", path, payload.get("error"))


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def serve(
    host: str = "127.0.0.1",
    port: int = 8474,
    config: Path | None = None,
    seed: int | None = None,
    toxic_max_lifetime_s: float = DEFAULT_TOXIC_MAX_LIFETIME_S,
    *,
    token: str | None = None,
    upstreams_file: Path | None = None,
) -> None:
    """Serve the API until SIGTERM or SIGINT."""
    _raise_fd_limit()
    server = ProxyServer(
        seed=seed, toxic_max_lifetime_s=toxic_max_lifetime_s, upstreams_file=upstreams_file
    )
    api = ToxiproxyApi(server, token=token)
    runner = web.AppRunner(api.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    if config is not None:
        await _load_config(api, config)
    bound = runner.addresses[0]
    url_host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    print(
        json.dumps(
            {
                "event": "listening",
                "url": f"http://{url_host}:{bound[1]}",
                "seed": server.seed,
                "pid": os.getpid(),
            }
        ),
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        server.shutdown()
        await runner.cleanup()


def run(
    host: str = "127.0.0.1",
    port: int = 8474,
    config: Path | None = None,
    seed: int | None = None,
    toxic_max_lifetime_s: float = DEFAULT_TOXIC_MAX_LIFETIME_S,
    *,
    token_env: str | None = None,
    upstreams_file: Path | None = None,
    allow_remote: bool = False,
) -> None:
    """Run the server in the foreground of this process.

    The API has no authentication of its own (as Toxiproxy): anyone who reaches it can cut
    the hops it carries. So it binds a non-loopback address only with ``allow_remote`` and a
    token (``token_env`` names the variable holding it); any request without
    ``Authorization: Bearer <token>`` is then refused with 401.
    """
    token = os.environ.get(token_env) if token_env else None
    if token_env and not token:
        print(f"resildrill proxy: --token-env: ${token_env} is not set", file=sys.stderr)
        raise SystemExit(2)
    if not is_loopback(host):
        if not allow_remote:
            print(
                f"resildrill proxy: --host {host}: refusing to serve the API beyond loopback "
                "(anyone who reaches it can cut clinicians' paths); use --allow-remote with "
                "--token-env",
                file=sys.stderr,
            )
            raise SystemExit(2)
        if token is None:
            print("resildrill proxy: --allow-remote needs --token-env", file=sys.stderr)
            raise SystemExit(2)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        asyncio.run(
            serve(
                host,
                port,
                config,
                seed,
                toxic_max_lifetime_s,
                token=token,
                upstreams_file=upstreams_file,
            )
        )
    except OSError as exc:
        print(f"resildrill proxy: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        raise SystemExit(6) from None


def main(argv: list[str] | None = None) -> None:
    """``python -m resildrill.proxy``: the same options as ``resildrill proxy``."""
    parser = argparse.ArgumentParser(prog="python -m resildrill.proxy")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8474)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--token-env", default=None, help="variable holding the API's token")
    parser.add_argument("--upstreams-file", type=Path, default=None)
    parser.add_argument("--allow-remote", action="store_true")
    parser.add_argument(
        "--toxic-max-lifetime",
        type=float,
        default=DEFAULT_TOXIC_MAX_LIFETIME_S,
        help="seconds after which toxics named resildrill-* are removed by the server",
    )
    args = parser.parse_args(argv)
    run(
        args.host,
        args.port,
        args.config,
        args.seed,
        args.toxic_max_lifetime,
        token_env=args.token_env,
        upstreams_file=args.upstreams_file,
        allow_remote=args.allow_remote,
    )
