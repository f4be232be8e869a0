"""Every hop of the ward EHR is an address: routed through resildrill's own proxy, a drill can
cut or slow the clients -> gateway and gateway -> replica hops without touching a process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wardehr.stack import free_port
from wardehr.testing import FhirClient, RunningStack, running_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def api(base: str, method: str, path: str, body: Any = None) -> Any:
    """One call to the Toxiproxy-compatible API."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"{base}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[RunningStack, str]]:
    """A stack whose gateway and replica-a hops go through a ``python -m resildrill.proxy``
    process; both are stopped by pid at the end."""
    ports = {k: free_port() for k in ("gateway", "replica-a", "replica-b", "database")}
    hop_gateway, hop_replica = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    proxy = subprocess.Popen(
        [sys.executable, "-m", "resildrill.proxy", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proxy.stdout is not None
        ready = json.loads(proxy.stdout.readline())
        base = ready["url"]
        api(
            base,
            "POST",
            "/populate",
            [
                {
                    "name": "gateway",
                    "listen": hop_gateway,
                    "upstream": f"127.0.0.1:{ports['gateway']}",
                },
                {
                    "name": "replica-a",
                    "listen": hop_replica,
                    "upstream": f"127.0.0.1:{ports['replica-a']}",
                },
            ],
        )
        via = {"gateway": hop_gateway, "replica-a": hop_replica}
        with running_stack(tmp_path, ports=ports, via=via) as ehr:
            yield ehr, base
    finally:
        proxy.terminate()
        try:
            proxy.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait(timeout=5)
        if proxy.stdout is not None:
            proxy.stdout.close()


def replica_a_health(client: FhirClient) -> bool:
    """Whether the gateway currently counts replica-a healthy."""
    status = client.get("/gateway/status").body
    return bool(next(u for u in status["upstreams"] if u["name"] == "replica-a")["healthy"])


def test_hops_route_through_the_proxy(proxied: tuple[RunningStack, str]) -> None:
    """Cutting the gateway -> replica-a hop takes replica-a out of rotation (the process is
    fine, reads keep working through replica-b); a latency toxic on the clients -> gateway hop
    slows every request by at least its latency."""
    ehr, base = proxied
    client = ehr.client()  # the target's gateway address: the proxy's listener
    assert client.get("/Patient/pat-0001").status == 200
    status = client.get("/gateway/status").body
    replica_a = next(u for u in status["upstreams"] if u["name"] == "replica-a")
    assert replica_a["address"] == ehr.address("replica-a")  # the gateway dials the proxy

    api(base, "POST", "/proxies/replica-a", {"enabled": False})
    deadline = time.monotonic() + 5
    while replica_a_health(client) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not replica_a_health(client)
    reads = [client.get("/Patient/pat-0002") for _ in range(20)]
    assert {r.status for r in reads} == {200}
    assert {r.headers.get("X-Replica") for r in reads} == {"replica-b"}

    api(base, "POST", "/proxies/replica-a", {"enabled": True})
    deadline = time.monotonic() + 5
    while not replica_a_health(client) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert replica_a_health(client)

    api(
        base,
        "POST",
        "/proxies/gateway/toxics",
        {
            "name": "slow",
            "type": "latency",
            "stream": "downstream",
            "attributes": {"latency": 300, "jitter": 0},
        },
    )
    client.close()  # a new connection, made after the toxic
    slow = [client.get("/Patient/pat-0003") for _ in range(3)]
    client.close()
    assert all(r.status == 200 and r.elapsed >= 0.3 for r in slow), [r.elapsed for r in slow]
