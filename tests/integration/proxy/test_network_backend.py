"""The ``network`` fault backend against the embedded server started as its own process."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from proxy_support import EchoServer, connect, is_listening, round_trip
from pydantic import ValidationError

from resildrill.clock import MonotonicClock
from resildrill.drill.model import TargetSpec
from resildrill.errors import InjectionFailed, ToolFailed
from resildrill.faults.base import FaultBackend, FaultContext
from resildrill.faults.embedded_proxy import ensure_embedded_proxy, stop_embedded_proxy
from resildrill.faults.network import NetworkFaultBackend, NetworkFaultSpec
from resildrill.faults.toxiproxy_client import ProxyUnreachable, ToxiproxyClient
from resildrill.plugins import FaultRegistry

pytestmark = [pytest.mark.integration, pytest.mark.timeout(40)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_target(url: str, upstream: str, listen_port: int, embedded: bool = True) -> TargetSpec:
    return TargetSpec.model_validate(
        {
            "apiVersion": "resildrill/v1",
            "kind": "Target",
            "name": "net-test",
            "environment": "test",
            "probes": [{"name": "p", "tcp": {"host": "127.0.0.1", "port": listen_port}}],
            "toxiproxy": {
                "url": url,
                "embedded": embedded,
                "proxies": {"db": {"listen": f"127.0.0.1:{listen_port}", "upstream": upstream}},
            },
        }
    )


def fault(**kw: object) -> NetworkFaultSpec:
    return NetworkFaultSpec.model_validate({"id": "f1", "kind": "network", "at": "1s", **kw})


class Env:
    """A target whose embedded proxy server runs as a process for the test."""

    def __init__(self, tmp: Path, echo: EchoServer) -> None:
        self.run_dir = tmp / "run"
        self.listen_port = free_port()
        self.url = f"http://127.0.0.1:{free_port()}"
        self.target = make_target(self.url, echo.addr, self.listen_port)
        self.ctx = FaultContext(self.target, tmp, "run1", MonotonicClock())
        self.backend = NetworkFaultBackend(timeout_s=2.0)


@pytest.fixture
def env(tmp_path: Path, echo_server: EchoServer) -> Iterator[Env]:
    """The embedded server ensured for a one-proxy target, stopped by pid afterwards."""
    e = Env(tmp_path, echo_server)
    ensure_embedded_proxy(e.target, e.run_dir, seed=1)
    yield e
    stop_embedded_proxy(e.run_dir)


def test_backend_meets_the_contract_and_is_registered() -> None:
    """The backend satisfies FaultBackend and is discovered under the kind 'network'."""
    assert isinstance(NetworkFaultBackend(), FaultBackend)
    registry = FaultRegistry.discover()
    assert "network" in registry.kinds
    assert isinstance(registry.backend("network"), NetworkFaultBackend)


def test_spec_validation() -> None:
    """Specs need toxic xor down, integer known attributes, and sane values."""
    assert fault(proxy="db", down=True).down
    spec = fault(proxy="db", toxic={"type": "latency", "attributes": {"latency": 800}})
    assert spec.toxic is not None and spec.toxic.stream == "downstream"
    bad = [
        {"proxy": "db"},
        {"proxy": "db", "down": True, "toxic": {"type": "noop"}},
        {"proxy": "db", "toxic": {"type": "latency", "attributes": {"latency": 100.0}}},
        {"proxy": "db", "toxic": {"type": "latency", "attributes": {"latncy": 100}}},
        {"proxy": "db", "toxic": {"type": "bandwidth", "attributes": {"rate": 0}}},
        {"proxy": "db", "toxic": {"type": "slicer", "attributes": {}}},
        {"proxy": "db", "toxic": {"type": "down"}},
        {"proxy": "db", "toxic": {"type": "noop", "toxicity": 1.5}},
    ]
    for body in bad:
        with pytest.raises(ValidationError):
            fault(**body)


def test_ensure_starts_once_and_creates_proxies(env: Env) -> None:
    """ensure_embedded_proxy starts one server with the declared proxies; a second one reuses it."""
    pid = json.loads((env.run_dir / "toxiproxy.pid").read_text())["pid"]
    client = ToxiproxyClient(env.url)
    proxy = client.get_proxy("db")
    assert proxy is not None and proxy["listen"] == f"127.0.0.1:{env.listen_port}"
    with connect(env.listen_port) as sock:
        round_trip(sock)
        assert ensure_embedded_proxy(env.target, env.run_dir) == env.url
        round_trip(sock)  # an unchanged proxy is kept with its connections
    assert json.loads((env.run_dir / "toxiproxy.pid").read_text())["pid"] == pid


def test_toxic_prepare_inject_revert(env: Env) -> None:
    """A latency toxic: recipe journaled first, then injected, measured, reverted idempotently."""
    spec = fault(
        proxy="db",
        duration="20s",
        toxic={"type": "latency", "attributes": {"latency": 200}, "stream": "downstream"},
    )
    b = env.backend
    assert b.preflight(spec, env.ctx) == []
    recipe = b.prepare(spec, env.ctx)
    recipe = json.loads(json.dumps(recipe))  # what the journal holds
    assert recipe["toxic"]["name"] == "resildrill-run1-f1"
    assert recipe["toxic"]["attributes"]["resildrill_lifetime_ms"] == 50_000
    assert not b.is_injected(recipe)
    with connect(env.listen_port) as sock:
        assert round_trip(sock) < 0.1
        b.inject(spec, recipe, env.ctx)
        assert b.is_injected(recipe)
        assert b.inject(spec, recipe, env.ctx) == recipe  # a retried inject is fine
        assert 0.19 < round_trip(sock) < 0.3
        assert "removed" in NetworkFaultBackend().revert(recipe)  # from the recipe alone
        assert not b.is_injected(recipe)
        assert round_trip(sock) < 0.1
    assert "already gone" in b.revert(recipe)
    assert "curl -X DELETE" in b.undo_hint(recipe) and not b.self_heals(spec, env.ctx)


def test_down_disables_and_reenables(env: Env) -> None:
    """down: true refuses connections until revert re-enables the proxy on the same port."""
    spec = fault(proxy="db", down=True)
    b = env.backend
    recipe = b.prepare(spec, env.ctx)
    assert recipe["was_enabled"] is True
    b.inject(spec, recipe, env.ctx)
    assert b.is_injected(recipe) and not is_listening(env.listen_port)
    assert b.revert(recipe) == "re-enabled proxy db"
    assert not b.is_injected(recipe) and is_listening(env.listen_port)
    assert "enabled" in b.undo_hint(recipe)


def test_server_gone_means_nothing_injected(env: Env) -> None:
    """After the embedded server stops, the toxic is gone: revert and is_injected say so."""
    spec = fault(proxy="db", toxic={"type": "noop"})
    recipe = env.backend.prepare(spec, env.ctx)
    env.backend.inject(spec, recipe, env.ctx)
    assert stop_embedded_proxy(env.run_dir)
    assert not stop_embedded_proxy(env.run_dir)
    assert not env.backend.is_injected(recipe)
    assert "not running" in env.backend.revert(recipe)
    with pytest.raises(InjectionFailed):
        env.backend.prepare(spec, env.ctx)


def test_undeclared_proxy_and_missing_section(env: Env) -> None:
    """A proxy the target does not declare is a preflight problem and refused by prepare."""
    spec = fault(proxy="nope", toxic={"type": "noop"})
    assert "not declared" in env.backend.preflight(spec, env.ctx)[0]
    with pytest.raises(InjectionFailed):
        env.backend.prepare(spec, env.ctx)


def test_external_toxiproxy_is_only_checked(env: Env, echo_server: EchoServer) -> None:
    """External mode starts nothing, requires the declared proxies and only adds own toxics."""
    ext = make_target(env.url, echo_server.addr, env.listen_port, embedded=False)
    assert ensure_embedded_proxy(ext, env.run_dir) == env.url
    ctx = FaultContext(ext, env.run_dir, "run2", MonotonicClock())
    spec = fault(proxy="db", toxic={"type": "latency", "attributes": {"latency": 5}})
    recipe = env.backend.prepare(spec, ctx)
    assert "resildrill_lifetime_ms" not in recipe["toxic"]["attributes"]
    env.backend.inject(spec, recipe, ctx)
    assert env.backend.is_injected(recipe)
    env.backend.revert(recipe)
    ToxiproxyClient(env.url).call("DELETE", "/proxies/db")
    assert "does not exist" in env.backend.preflight(spec, ctx)[0]
    with pytest.raises(ToolFailed, match="lacks proxies: db"):
        ensure_embedded_proxy(ext, env.run_dir)


def test_unreachable_external_is_a_problem_not_a_hang(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    """A Toxiproxy that accepts but never answers fails each call within its deadline."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # never accepted: connects succeed, replies never come
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        target = make_target(url, echo_server.addr, free_port(), embedded=False)
        ctx = FaultContext(target, tmp_path, "r", MonotonicClock())
        backend = NetworkFaultBackend(timeout_s=0.3)
        spec = fault(proxy="db", toxic={"type": "noop"})
        t0 = time.monotonic()
        assert backend.preflight(spec, ctx)
        recipe = {
            "kind": "network",
            "url": url,
            "embedded": False,
            "proxy": "db",
            "action": "toxic",
            "toxic": {"name": "resildrill-r-f1"},
        }
        assert backend.is_injected(recipe)  # cannot tell: assume still there
        with pytest.raises(ProxyUnreachable):
            backend.revert(recipe)
        assert time.monotonic() - t0 < 2.0
    finally:
        silent.close()
