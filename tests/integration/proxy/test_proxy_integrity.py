"""No byte lost or reordered while toxics are added, updated and removed mid-transfer."""

from __future__ import annotations

import hashlib
import random
import threading
import time

import pytest
from proxy_support import EchoServer, ToxiServer, connect

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TOTAL = 400 * 1024 * 1024
BLOCK = 256 * 1024
#: Toxics that keep every byte; each is added to a random stream, then removed.
CHURN = [
    ("latency", {"latency": 2, "jitter": 1}),
    ("noop", {}),
    ("slicer", {"average_size": 8192, "size_variation": 2048, "delay": 0}),
    ("bandwidth", {"rate": 2_000_000}),
    ("slow_close", {"delay": 5}),
]


def _pattern(seed: int) -> bytes:
    return random.Random(seed).randbytes(BLOCK)


def test_400mb_echo_with_toxic_churn_keeps_every_byte_in_order(
    tp: ToxiServer, echo_server: EchoServer
) -> None:
    """400 MB echoed through the proxy while toxics come and go arrive intact (SHA-256)."""
    port = tp.create("t-churn", echo_server.addr)
    blocks = [_pattern(i) for i in range(8)]
    sent_hash, recv_hash = hashlib.sha256(), hashlib.sha256()
    received = [0]
    done = threading.Event()
    errors: list[BaseException] = []

    def churn() -> None:
        # Toxics overlap (the chain is rarely empty) and every 8th step all are removed, so
        # links keep switching between the chain and the splice path mid-stream.
        rng = random.Random(1)
        live: list[str] = []
        n = 0
        deadline = time.monotonic() + 90
        while not done.is_set() and time.monotonic() < deadline and n < 20000:
            type_, attrs = CHURN[n % len(CHURN)]
            name = f"c{n}"
            body = {
                "name": name,
                "type": type_,
                "stream": rng.choice(["upstream", "downstream"]),
                "attributes": attrs,
            }
            r = tp.req("POST", "/proxies/t-churn/toxics", body)
            assert r.status_code == 200, r.text
            live.append(name)
            if type_ == "latency":
                tp.req("PATCH", f"/proxies/t-churn/toxics/{name}", {"attributes": {"latency": 1}})
            while len(live) > 2 or (n % 8 == 7 and live):
                tp.req("DELETE", f"/proxies/t-churn/toxics/{live.pop(0)}")
            time.sleep(rng.uniform(0.0, 0.004))
            n += 1
        churned.append(n)

    churned: list[int] = []
    with connect(port, timeout=60) as sock:

        def reader() -> None:
            try:
                while received[0] < TOTAL:
                    data = sock.recv(1 << 20)
                    if not data:
                        break
                    recv_hash.update(data)
                    received[0] += len(data)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        churner = threading.Thread(target=churn)
        reading = threading.Thread(target=reader)
        reading.start()
        churner.start()
        t0 = time.monotonic()
        for i in range(TOTAL // BLOCK):
            block = blocks[i % len(blocks)]
            sent_hash.update(block)
            sock.sendall(block)
        reading.join(100)
        done.set()
        churner.join(10)
        elapsed = time.monotonic() - t0
    assert not errors
    assert received[0] == TOTAL
    assert recv_hash.hexdigest() == sent_hash.hexdigest()
    print(f"churn: {churned} toxic add/remove cycles in {elapsed:.2f} s")
    assert churned and churned[0] >= 30, f"only {churned} toxic changes in {elapsed:.1f}s"
