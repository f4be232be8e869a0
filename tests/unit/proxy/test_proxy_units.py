"""Unit tests of the proxy's pieces: JSON decoding, addresses, slicer splits, links in-process."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from resildrill.proxy.api import BadBody, decode_body
from resildrill.proxy.link import Connection
from resildrill.proxy.server import ApiError, resolved_listen, split_host_port
from resildrill.proxy.toxics import REGISTRY, AttributeError400
from resildrill.proxy.toxics.slicer import split_points

pytestmark = pytest.mark.timeout(30)


def test_registry_has_every_toxiproxy_type() -> None:
    """The registry lists exactly Toxiproxy's eight toxic types, with no 'down'."""
    assert sorted(REGISTRY) == sorted(
        [
            "latency",
            "bandwidth",
            "slow_close",
            "timeout",
            "reset_peer",
            "slicer",
            "limit_data",
            "noop",
        ]
    )


def test_checks_refuse_what_crashes_toxiproxy() -> None:
    """Negative values, bandwidth rate 0 and slicer average_size 0 are refused."""
    for type_, attrs in (
        ("latency", {"latency": -1}),
        ("bandwidth", {"rate": 0}),
        ("slicer", {"average_size": 0}),
    ):
        with pytest.raises(AttributeError400):
            REGISTRY[type_].check(attrs)
    REGISTRY["bandwidth"].check({"rate": 1})


def test_decode_body_like_go() -> None:
    """Empty is EOF, trailing data after the first value is ignored, NaN is refused."""
    with pytest.raises(BadBody, match="EOF"):
        decode_body(b"  \n")
    assert decode_body(b'{"a": 1} trailing') == {"a": 1}
    with pytest.raises(BadBody):
        decode_body(b"NaN")
    assert decode_body(b"[1.0]")[0].text == "1.0"


def test_addresses() -> None:
    """host:port parsing and resolution follow Go's wording and rules."""
    assert split_host_port("[::1]:80") == ("::1", 80)
    assert resolved_listen("localhost:0") == "127.0.0.1:0"
    assert resolved_listen("") == "127.0.0.1:0"
    for bad, message in (
        ("bogus", "missing port"),
        ("a:b:c", "too many colons"),
        ("x:99999", "invalid port"),
    ):
        with pytest.raises(ApiError, match=message):
            split_host_port(bad)


def test_slicer_split_points() -> None:
    """24 bytes at average 1 give 24 pieces; 480 KB at 1024±512 give 240–720 ordered pieces."""
    rng = random.Random(0)
    assert split_points(24, 1, 0, rng) == list(range(24))
    starts = split_points(480_000, 1024, 512, rng)
    assert 240 <= len(starts) <= 720
    assert starts == sorted(set(starts)) and starts[0] == 0
    sizes = [b - a for a, b in zip(starts, [*starts[1:], 480_000], strict=True)]
    assert max(sizes) <= 1536 and min(sizes) >= 1


class _Toxic:
    def __init__(self, name: str, type_: str, **attrs: int) -> None:
        self.name = name
        self.toxicity = 1.0
        self.attributes = attrs
        self.behaviour = REGISTRY[type_]()


def test_link_switches_paths_without_losing_bytes() -> None:
    """A link moves 8 MB intact while toxics are added and removed (splice <-> chain)."""

    async def scenario() -> bytes:
        loop = asyncio.get_running_loop()
        client_app, client = socket.socketpair()
        upstream, server_app = socket.socketpair()
        for s in (client, upstream, client_app, server_app):
            s.setblocking(False)
        closed: list[Connection] = []
        conn = Connection(loop, client, upstream, "seed/p/1", closed.append)
        conn.start({})
        payload = random.Random(1).randbytes(8 << 20)
        received = bytearray()

        async def send() -> None:
            for i in range(0, len(payload), 65536):
                await loop.sock_sendall(client_app, payload[i : i + 65536])
            client_app.shutdown(socket.SHUT_WR)

        async def recv() -> None:
            while True:
                data = await loop.sock_recv(server_app, 1 << 20)
                if not data:
                    return
                received.extend(data)

        async def churn() -> None:
            link = conn.links["upstream"]
            for n in range(30):
                toxic = _Toxic(
                    f"t{n}",
                    ["latency", "noop", "slicer"][n % 3],
                    latency=1,
                    average_size=4096,
                    size_variation=0,
                    delay=0,
                )
                link.add_toxic(toxic)
                await asyncio.sleep(0.003)
                await link.remove_toxic(toxic.name)
                await asyncio.sleep(0.002)

        await asyncio.wait_for(asyncio.gather(send(), recv(), churn()), 30)
        for s in (client_app, server_app):
            s.close()
        conn.abort()
        assert bytes(received) == payload
        return bytes(received)

    assert len(asyncio.run(scenario())) == 8 << 20
