"""Fixtures of the proxy suite: the same tests against the embedded server and a real one.

The embedded server runs as its own process (``python -m resildrill.proxy``), started once
per module and stopped by pid. The real Toxiproxy is an opt-in run: no registry here carries
it, so the suite is parametrised for it only when ``TOXIPROXY_URL`` names one
(``./dev test-toxiproxy URL``, docs/proxy.md), never as skips in every run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from proxy_support import EchoServer, ToxiServer, start_proxy_process, stop_process

SEED = "42"


#: The servers the suite runs against: the embedded one always, a real one on request.
SERVERS = ["embedded", *(["real"] if os.environ.get("TOXIPROXY_URL") else [])]


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[ToxiServer]:
    """A Toxiproxy API: the embedded server (a process), or TOXIPROXY_URL's real one."""
    if request.param == "real":
        yield ToxiServer(os.environ["TOXIPROXY_URL"].rstrip("/"), real=True)
        return
    proc, url = start_proxy_process("--seed", SEED)
    try:
        yield ToxiServer(url, real=False)
    finally:
        stop_process(proc)


@pytest.fixture
def tp(server: ToxiServer) -> Iterator[ToxiServer]:
    """The server, with every ``t-*`` proxy a test created deleted afterwards."""
    yield server
    r = server.req("GET", "/proxies")
    for name in r.json():
        if name.startswith("t-") or name.startswith("t "):
            server.req("DELETE", f"/proxies/{name.replace(' ', '%20')}")


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    """A TCP echo server on 127.0.0.1."""
    srv = EchoServer()
    yield srv
    srv.stop()
