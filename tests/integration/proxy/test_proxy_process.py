"""The server as a process: --config at start, many concurrent connections, clean shutdown."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from proxy_support import (
    EchoServer,
    ToxiServer,
    connect,
    read_outcome,
    round_trip,
    start_proxy_process,
    stop_process,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_config_file_creates_proxies_at_start(tmp_path: Path, echo_server: EchoServer) -> None:
    """--config with a /populate-style array creates those proxies before the API answers."""
    config = tmp_path / "proxies.json"
    config.write_text(
        json.dumps([{"name": "cfg", "listen": "127.0.0.1:0", "upstream": echo_server.addr}])
    )
    proc, url = start_proxy_process("--config", str(config))
    try:
        srv = ToxiServer(url, real=False)
        listen = srv.req("GET", "/proxies/cfg").json()["listen"]
        with connect(int(listen.rsplit(":", 1)[1])) as sock:
            round_trip(sock)
    finally:
        stop_process(proc)


def test_sigterm_closes_proxied_connections(echo_server: EchoServer) -> None:
    """SIGTERM stops the server, exits 0 and closes every proxied connection."""
    proc, url = start_proxy_process()
    port = ToxiServer(url, real=False).create("t-term", echo_server.addr)
    with connect(port) as sock:
        round_trip(sock)
        stop_process(proc)
        assert proc.returncode == 0
        assert read_outcome(sock) in ("eof", "reset")


def test_300_concurrent_connections_while_a_new_one_works(
    tp: ToxiServer, echo_server: EchoServer
) -> None:
    """300 connections held through one proxy all echo, and a new one still gets fast trips."""
    port = tp.create("t-many", echo_server.addr)
    held: list[socket.socket] = []
    try:
        for _ in range(300):
            sock = connect(port)
            sock.sendall(b"hi")
            held.append(sock)
        assert all(s.recv(2) == b"hi" for s in held)
        with connect(port) as extra:
            assert max(round_trip(extra) for _ in range(50)) < 0.5
        for sock in held:
            sock.sendall(b"yo")
        assert all(s.recv(2) == b"yo" for s in held)
    finally:
        for sock in held:
            sock.close()
