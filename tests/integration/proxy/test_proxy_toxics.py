"""Each toxic's effect on real TCP traffic through the proxy, with numeric bounds."""

from __future__ import annotations

import contextlib
import socket
import statistics
import threading
import time
from collections.abc import Iterator

import pytest
from proxy_support import (
    EchoServer,
    ToxiServer,
    connect,
    read_outcome,
    recv_all,
    recv_exact,
    round_trip,
    start_proxy_process,
    stop_process,
    within_tries,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(40)]


class Recorder:
    """Upstream server that records what each connection sent and when it ended."""

    def __init__(self, reply: bytes = b"") -> None:
        self.received: list[bytes] = []
        self.outcomes: list[str] = []
        self.done = threading.Event()
        self.reply = reply
        self.server = EchoServer(self._handle)

    def _handle(self, conn: socket.socket) -> None:
        if self.reply:
            conn.sendall(self.reply)
        parts: list[bytes] = []
        outcome = "eof"
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                parts.append(data)
        except ConnectionResetError:
            outcome = "reset"
        self.received.append(b"".join(parts))
        self.outcomes.append(outcome)
        self.done.set()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """An upstream that records bytes received per connection."""
    rec = Recorder()
    yield rec
    rec.server.stop()


def median_rtt(sock: socket.socket, n: int = 15) -> float:
    return statistics.median(round_trip(sock, b"x" * 64) for _ in range(n))


def test_latency_adds_100ms_per_round_trip(tp: ToxiServer, echo_server: EchoServer) -> None:
    """latency 100 ms adds 100 ± 2 ms to every round trip (median, and each trip within ± 5 ms)."""
    port = tp.create("t-l100", echo_server.addr)
    tp.toxic("t-l100", "latency", latency=100, toxicity=0)

    def measure() -> list[float]:
        with connect(port) as sock:
            base = median_rtt(sock)
            tp.req("PATCH", "/proxies/t-l100/toxics/latency_downstream", {"toxicity": 1})
            trips = [round_trip(sock, b"x" * 64) - base for _ in range(10)]
            tp.req("PATCH", "/proxies/t-l100/toxics/latency_downstream", {"toxicity": 0})
        return trips

    def ok(trips: list[float]) -> bool:
        return abs(statistics.median(trips) - 0.100) <= 0.002 and all(
            0.095 <= t <= 0.105 for t in trips
        )

    trips = within_tries(measure, ok, tries=5)
    assert abs(statistics.median(trips) - 0.100) <= 0.002, trips
    assert all(0.095 <= t <= 0.105 for t in trips), trips


def test_latency_upstream_on_32k_message(tp: ToxiServer, echo_server: EchoServer) -> None:
    """latency 100 upstream on a 32 KiB message: the echo completes in 100–115 ms."""
    port = tp.create("t-lu", echo_server.addr)
    tp.toxic("t-lu", "latency", stream="upstream", latency=100)

    def measure() -> float:
        with connect(port) as sock:
            return round_trip(sock, b"m" * 32768)

    elapsed = within_tries(measure, lambda e: 0.099 <= e <= 0.115)
    assert 0.099 <= elapsed <= 0.115


def test_latency_does_not_limit_throughput(tp: ToxiServer, echo_server: EchoServer) -> None:
    """With latency 100 ms upstream, 20 MB still move at >= 10 MB/s (delays are pipelined).

    Serialised delays would give 32 KiB per 100 ms, 0.3 MB/s; 10 MB/s leaves room for the
    Python echo server and a shared CPU.
    """
    port = tp.create("t-lt", echo_server.addr)
    tp.toxic("t-lt", "latency", stream="upstream", latency=100)
    payload = b"z" * (20 << 20)
    with connect(port, timeout=20) as sock:
        got: list[int] = []
        reader = threading.Thread(target=lambda: got.append(len(recv_exact(sock, len(payload)))))
        t0 = time.perf_counter()
        reader.start()
        sock.sendall(payload)
        reader.join(20)
        elapsed = time.perf_counter() - t0
    assert got == [len(payload)]
    assert len(payload) / (elapsed - 0.1) >= 10e6, elapsed


def test_latency_jitter_bounds(tp: ToxiServer, echo_server: EchoServer) -> None:
    """latency 100 ± 40: every round trip falls in [60, 142] ms and they vary."""
    port = tp.create("t-lj", echo_server.addr)
    tp.toxic("t-lj", "latency", latency=100, jitter=40)

    def measure() -> list[float]:
        with connect(port) as sock:
            return [round_trip(sock) for _ in range(8)]

    trips = within_tries(measure, lambda ts: all(0.059 <= t <= 0.142 for t in ts))
    assert all(0.059 <= t <= 0.142 for t in trips), trips
    assert max(trips) - min(trips) > 0.01


def test_latency_removed_mid_flight_releases_held_data(
    tp: ToxiServer, echo_server: EchoServer
) -> None:
    """Removing a 2 s latency toxic releases the held chunk at once, without loss."""
    port = tp.create("t-lr", echo_server.addr)
    tp.toxic("t-lr", "latency", latency=2000)
    with connect(port) as sock:
        t0 = time.perf_counter()
        sock.sendall(b"held")
        time.sleep(0.2)
        tp.req("DELETE", "/proxies/t-lr/toxics/latency_downstream")
        assert recv_exact(sock, 4) == b"held"
        assert time.perf_counter() - t0 < 0.6


def test_bandwidth_1mb_at_500kbs(tp: ToxiServer) -> None:
    """bandwidth 500 KB/s upstream moves 1 MB in 2.0 s ± 5%, bytes intact."""
    payload = bytes(range(250)) * 4000  # 1 MB, as Toxiproxy counts it (1 KB = 1000 bytes)

    def measure() -> tuple[bool, float]:
        recorder = Recorder()
        try:
            port = tp.create("t-bwu", recorder.server.addr)
            tp.toxic("t-bwu", "bandwidth", stream="upstream", rate=500)
            with connect(port, timeout=10) as sock:
                t0 = time.perf_counter()
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
                assert recorder.done.wait(10)
                elapsed = time.perf_counter() - t0
            return recorder.received[0] == payload, elapsed
        finally:
            tp.req("DELETE", "/proxies/t-bwu")
            recorder.server.stop()

    intact, elapsed = within_tries(measure, lambda m: 1.9 <= m[1] <= 2.1)
    assert intact
    assert 1.9 <= elapsed <= 2.1, elapsed


def test_slow_close_upstream(tp: ToxiServer) -> None:
    """slow_close 300 upstream: the server sees EOF 300 ms (+ 40) after the client closed."""

    def measure() -> tuple[list[bytes], float]:
        recorder = Recorder()
        try:
            port = tp.create("t-scu", recorder.server.addr)
            tp.toxic("t-scu", "slow_close", stream="upstream", delay=300)
            sock = connect(port)
            sock.sendall(b"bye")
            time.sleep(0.05)
            t0 = time.perf_counter()
            sock.close()
            assert recorder.done.wait(3)
            return recorder.received, time.perf_counter() - t0
        finally:
            tp.req("DELETE", "/proxies/t-scu")
            recorder.server.stop()

    received, elapsed = within_tries(measure, lambda m: 0.29 <= m[1] <= 0.34)
    assert 0.29 <= elapsed <= 0.34
    assert received == [b"bye"]


def test_timeout_drops_data_then_closes(tp: ToxiServer, echo_server: EchoServer) -> None:
    """timeout 500: data sent meanwhile is dropped and the connection closes at 0.5 s ± 50 ms."""
    port = tp.create("t-tod", echo_server.addr)
    tp.toxic("t-tod", "timeout", stream="upstream", timeout=500)

    def measure() -> tuple[bytes, float]:
        with connect(port) as sock:
            t0 = time.perf_counter()
            sock.sendall(b"into the void")
            got = b""
            with contextlib.suppress(ConnectionResetError):
                got = recv_all(sock)
            return got, time.perf_counter() - t0

    got, elapsed = within_tries(measure, lambda m: m[0] == b"" and 0.49 <= m[1] <= 0.55)
    assert got == b"" and 0.49 <= elapsed <= 0.55, elapsed


def test_reset_peer_downstream_resets_both_sides(tp: ToxiServer, recorder: Recorder) -> None:
    """reset_peer 100 downstream: 100 ms after the server's first bytes, both peers get RST."""
    recorder.reply = b"hello"
    port = tp.create("t-rpd", recorder.server.addr)
    tp.toxic("t-rpd", "reset_peer", timeout=100)
    with connect(port) as sock:
        t0 = time.perf_counter()
        assert read_outcome(sock) == "reset"
        assert 0.09 <= time.perf_counter() - t0 <= 0.2
    assert recorder.done.wait(3) and recorder.outcomes == ["reset"]


def test_slicer_pieces_and_spacing(tp: ToxiServer, echo_server: EchoServer) -> None:
    """slicer 1/0/20000 µs: 24 bytes arrive as 24 one-byte reads over 0.46 s ± 0.06."""
    port = tp.create("t-sl", echo_server.addr)
    tp.toxic("t-sl", "slicer", average_size=1, size_variation=0, delay=20000)

    def measure() -> tuple[list[bytes], float]:
        with connect(port) as sock:
            sock.sendall(b"abcdefghijklmnopqrstuvwx")
            reads: list[bytes] = []
            t0 = time.perf_counter()
            while sum(map(len, reads)) < 24:
                reads.append(sock.recv(100))
            return reads, time.perf_counter() - t0

    reads, elapsed = within_tries(measure, lambda m: len(m[0]) == 24 and 0.40 <= m[1] <= 0.52)
    assert b"".join(reads) == b"abcdefghijklmnopqrstuvwx"
    assert len(reads) == 24 and 0.40 <= elapsed <= 0.52, (len(reads), elapsed)


def test_slicer_keeps_480kb_intact(tp: ToxiServer, recorder: Recorder) -> None:
    """slicer 1024/512/10 µs upstream passes 480 KB unchanged."""
    port = tp.create("t-sl2", recorder.server.addr)
    tp.toxic("t-sl2", "slicer", stream="upstream", average_size=1024, size_variation=512, delay=10)
    payload = bytes(i % 251 for i in range(480_000))
    with connect(port, timeout=10) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        assert recorder.done.wait(10)
    assert recorder.received[0] == payload


def test_limit_data_closes_after_exactly_1000_bytes(tp: ToxiServer, recorder: Recorder) -> None:
    """limit_data 1000 upstream: the server receives exactly 1000 bytes of 1500, then the end."""
    port = tp.create("t-ld1", recorder.server.addr)
    tp.toxic("t-ld1", "limit_data", stream="upstream", bytes=1000)
    payload = bytes(range(250)) * 6
    with connect(port) as sock:
        sock.sendall(payload)
        assert recorder.done.wait(3)
        assert read_outcome(sock) in ("eof", "reset")
    assert recorder.received[0] == payload[:1000]


def test_limit_data_count_survives_update(tp: ToxiServer, recorder: Recorder) -> None:
    """limit_data counts per connection across an update: 600 + 600 bytes deliver 1000."""
    port = tp.create("t-ld2", recorder.server.addr)
    tp.toxic("t-ld2", "limit_data", stream="upstream", bytes=1000)
    with connect(port) as sock:
        sock.sendall(b"a" * 600)
        time.sleep(0.1)
        tp.req(
            "PATCH", "/proxies/t-ld2/toxics/limit_data_upstream", {"attributes": {"bytes": 1000}}
        )
        sock.sendall(b"b" * 600)
        assert recorder.done.wait(3)
    assert recorder.received[0] == b"a" * 600 + b"b" * 400


def test_noop_passes_everything(tp: ToxiServer, echo_server: EchoServer) -> None:
    """noop on both streams echoes 1 MB unchanged."""
    port = tp.create("t-noop", echo_server.addr)
    tp.toxic("t-noop", "noop")
    tp.toxic("t-noop", "noop", stream="upstream")
    payload = bytes(range(256)) * 4096
    with connect(port, timeout=10) as sock:
        box: list[bytes] = []
        reader = threading.Thread(target=lambda: box.append(recv_exact(sock, len(payload))))
        reader.start()
        sock.sendall(payload)
        reader.join(10)
    assert box == [payload]


def test_toxicity_zero_then_one(tp: ToxiServer, echo_server: EchoServer) -> None:
    """toxicity 0 lets data through; updating it to 1 with timeout 100 closes within 150 ms."""
    port = tp.create("t-t01", echo_server.addr)
    tp.toxic("t-t01", "timeout", timeout=100, toxicity=0)
    with connect(port) as sock:
        assert round_trip(sock) < 0.05
        t0 = time.perf_counter()
        tp.req("PATCH", "/proxies/t-t01/toxics/timeout_downstream", {"toxicity": 1})
        assert read_outcome(sock) in ("eof", "reset")
        assert time.perf_counter() - t0 < 0.15


def _delay_pattern(url: str, upstream: str) -> list[bool]:
    srv = ToxiServer(url, real=False)
    port = srv.create("t-seed", upstream)
    srv.toxic("t-seed", "latency", latency=200, toxicity=0.5)
    pattern = []
    for _ in range(10):
        with connect(port) as sock:
            # 200 ms against a 100 ms threshold: a loaded machine cannot blur the two.
            pattern.append(round_trip(sock) > 0.1)
    return pattern


def test_seed_makes_toxicity_reproducible(echo_server: EchoServer) -> None:
    """Two servers with the same --seed delay the same connections; another seed differs."""
    patterns = []
    for seed in ("7", "7", "8"):
        proc, url = start_proxy_process("--seed", seed)
        try:
            patterns.append(_delay_pattern(url, echo_server.addr))
        finally:
            stop_process(proc)
    assert patterns[0] == patterns[1]
    assert 1 <= sum(patterns[0]) <= 9
    assert patterns[2] != patterns[0]


def test_toxic_lifetime_enforced_by_server(echo_server: EchoServer) -> None:
    """A toxic's resildrill_lifetime_ms, or --toxic-max-lifetime for resildrill-*, removes it."""
    proc, url = start_proxy_process("--toxic-max-lifetime", "0.5")
    try:
        srv = ToxiServer(url, real=False)
        port = srv.create("t-life", echo_server.addr)
        srv.toxic("t-life", "latency", latency=1000, resildrill_lifetime_ms=300, name="own")
        srv.toxic("t-life", "noop", name="resildrill-run1-f1")
        srv.toxic("t-life", "noop", name="other")
        time.sleep(0.4)
        names = [t["name"] for t in srv.req("GET", "/proxies/t-life/toxics").json()]
        assert names == ["resildrill-run1-f1", "other"]
        time.sleep(0.3)
        names = [t["name"] for t in srv.req("GET", "/proxies/t-life/toxics").json()]
        assert names == ["other"]
        with connect(port) as sock:
            assert round_trip(sock) < 0.05
    finally:
        stop_process(proc)
