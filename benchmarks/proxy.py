"""Benchmark of the embedded Toxiproxy-compatible proxy (issue 4); prints its figures.

1. Bulk throughput through a proxy with no toxic, both directions (upstream: client to
   server; downstream: ``-R``), with iperf3 from Debian, and direct loopback in the same run
   for reference; medians of several alternating runs. Without iperf3 a Python sender and
   receiver are used instead (and say so). Targets: >= 9 Gbit/s each way.
2. Added round-trip latency of a 64-byte request/response (p50, p99), proxy minus direct,
   against an echo server in its own process. Target: <= 90 us at p50.
3. A 50 ms latency toxic: observed round trip minus 50 ms at p50 and p99. Target: p99 error
   <= 1 ms.
4. 1,000 concurrent connections held open through the proxy while a new connection still
   gets its round trips; every held connection still echoes afterwards.

Everything binds 127.0.0.1, every child is stopped by pid, and the whole run is bounded
(about 90 s). ``.venv/bin/python benchmarks/proxy.py [--runs N] [--seconds S]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from typing import Any

# -- helper processes -------------------------------------------------------------------


def run_echo_server() -> None:
    """``--echo``: an asyncio echo server in its own process; prints its port."""

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)  # type: ignore[attr-defined]

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0, backlog=2048)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    _raise_nofile()
    asyncio.run(main())


def run_bulk_peer(mode: str, port: int, seconds: float) -> None:
    """``--bulk MODE``: the Python stand-in for iperf3 (send or receive for ``seconds``)."""
    sock = socket.create_connection(("127.0.0.1", port))
    buf = bytearray(1 << 20)
    total, t0 = 0, time.perf_counter()
    if mode == "send":
        view = memoryview(buf)
        while time.perf_counter() - t0 < seconds:
            sock.sendall(view)
            total += len(buf)
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1)
    else:
        while True:
            n = sock.recv_into(buf)
            if not n:
                break
            total += n
    print(json.dumps({"bytes": total, "seconds": time.perf_counter() - t0}), flush=True)


def _raise_nofile() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Children:
    """Child processes, stopped by pid at the end whatever happens."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, args: list[str], read_line: bool = True) -> tuple[subprocess.Popen[str], str]:
        proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.procs.append(proc)
        line = proc.stdout.readline().strip() if read_line and proc.stdout else ""
        return proc, line

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(5)
            if proc.stdout:
                proc.stdout.close()


# -- measurements -----------------------------------------------------------------------


def api(url: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:  # 127.0.0.1 only
        raw = resp.read()
    return json.loads(raw) if raw else None


def create_proxy(url: str, name: str, upstream_port: int) -> int:
    body = api(
        url,
        "POST",
        "/proxies",
        {"name": name, "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{upstream_port}"},
    )
    return int(body["listen"].rsplit(":", 1)[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def iperf_gbits(port: int, seconds: float, reverse: bool) -> float:
    args = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds), "-J"]
    if reverse:
        args.append("-R")
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 20, check=True)
    return float(json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"]) / 1e9


def throughput(
    direct: int, proxied: int, runs: int, seconds: float, use_iperf: bool, bulk_port_for: Any
) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {
        k: [] for k in ("direct_up", "proxy_up", "direct_down", "proxy_down")
    }
    for i in range(runs):
        order = [("direct", direct), ("proxy", proxied)]
        if i % 2:
            order.reverse()
        for label, port in order:
            for direction, reverse in (("up", False), ("down", True)):
                if use_iperf:
                    value = iperf_gbits(port, seconds, reverse)
                else:
                    value = bulk_port_for(label, reverse, seconds)
                results[f"{label}_{direction}"].append(value)
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def rtts(port: int, n: int, size: int = 64) -> list[float]:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    payload = b"q" * size
    out = []
    try:
        for _ in range(20):  # warm-up
            sock.sendall(payload)
            sock.recv(size)
        for _ in range(n):
            t0 = time.perf_counter_ns()
            sock.sendall(payload)
            got = 0
            while got < size:
                got += len(sock.recv(size - got))
            out.append((time.perf_counter_ns() - t0) / 1e9)
    finally:
        sock.close()
    return out


def concurrent_connections(port: int, count: int) -> dict[str, float]:
    t0 = time.perf_counter()
    held = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"hi")
        held.append(s)
    for s in held:
        assert s.recv(2) == b"hi"
    opened = time.perf_counter() - t0
    during = rtts(port, 300)
    ok = 0
    for s in held:
        s.sendall(b"yo")
    for s in held:
        ok += s.recv(2) == b"yo"
    for s in held:
        s.close()
    return {
        "open_s": opened,
        "rtt_p50_us": percentile(during, 50) * 1e6,
        "rtt_p99_us": percentile(during, 99) * 1e6,
        "still_echoing": ok,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5, help="throughput runs per case")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per iperf3 run")
    parser.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--bulk", nargs=3, metavar=("MODE", "PORT", "SECONDS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.echo:
        run_echo_server()
        return
    if args.bulk:
        run_bulk_peer(args.bulk[0], int(args.bulk[1]), float(args.bulk[2]))
        return
    _raise_nofile()
    children = Children()
    started = time.monotonic()
    try:
        _, ready = children.start(
            [sys.executable, "-m", "resildrill.proxy", "--port", "0", "--seed", "1"]
        )
        url = json.loads(ready)["url"]
        _, echo_line = children.start([sys.executable, __file__, "--echo"])
        echo_port = int(echo_line)
        echo_proxy = create_proxy(url, "echo", echo_port)

        use_iperf = shutil.which("iperf3") is not None
        if use_iperf:
            iperf_port = free_port()
            children.start(
                ["iperf3", "-s", "-B", "127.0.0.1", "-p", str(iperf_port)], read_line=False
            )
            wait_port(iperf_port)
            bulk = throughput(
                iperf_port,
                create_proxy(url, "bulk", iperf_port),
                args.runs,
                args.seconds,
                True,
                None,
            )
            tool = "iperf3"
        else:
            bulk = python_throughput(children, url, args.runs, args.seconds)
            tool = "python sender/receiver (iperf3 not installed)"

        direct = rtts(echo_port, 3000)
        proxied = rtts(echo_proxy, 3000)
        direct2 = rtts(echo_port, 2000)
        proxied2 = rtts(echo_proxy, 2000)
        direct, proxied = direct + direct2, proxied + proxied2

        api(
            url,
            "POST",
            "/proxies/echo/toxics",
            {"type": "latency", "stream": "downstream", "attributes": {"latency": 50}},
        )
        toxic = rtts(echo_proxy, 200)
        api(url, "DELETE", "/proxies/echo/toxics/latency_downstream")

        conc = concurrent_connections(echo_proxy, 1000)
    finally:
        children.stop()

    med = {k: statistics.median(v) for k, v in bulk.items()}
    print(f"embedded proxy benchmark ({tool}, medians of {args.runs} runs x {args.seconds:g} s)")
    print(
        f"  throughput upstream   : proxy {med['proxy_up']:6.2f} Gbit/s   "
        f"direct {med['direct_up']:6.2f} Gbit/s   (target >= 9)"
    )
    print(
        f"  throughput downstream : proxy {med['proxy_down']:6.2f} Gbit/s   "
        f"direct {med['direct_down']:6.2f} Gbit/s   (target >= 9)"
    )
    for key, values in bulk.items():
        print(f"    {key:12s} runs: " + " ".join(f"{v:.2f}" for v in values))
    d50, d99 = percentile(direct, 50) * 1e6, percentile(direct, 99) * 1e6
    p50, p99 = percentile(proxied, 50) * 1e6, percentile(proxied, 99) * 1e6
    print(
        f"  64-byte round trip    : direct p50 {d50:.0f} us p99 {d99:.0f} us; "
        f"proxy p50 {p50:.0f} us p99 {p99:.0f} us"
    )
    print(
        f"  added by the proxy    : p50 {p50 - d50:.0f} us, p99 {p99 - d99:.0f} us "
        "(target p50 <= 90 us; p99 differences are noise on shared cores)"
    )
    e50 = (percentile(toxic, 50) - 0.050) * 1e3
    e99 = (percentile(toxic, 99) - 0.050) * 1e3
    print(
        f"  latency toxic 50 ms   : observed - 50 ms: p50 {e50:+.3f} ms, p99 {e99:+.3f} ms "
        f"(includes the {d50 / 1000:.3f} ms direct round trip; target p99 <= 1 ms)"
    )
    print(
        f"  1,000 connections     : opened and echoed in {conc['open_s']:.2f} s; while held, "
        f"new connection p50 {conc['rtt_p50_us']:.0f} us p99 {conc['rtt_p99_us']:.0f} us; "
        f"{conc['still_echoing']:.0f}/1000 still echo"
    )
    print(f"  (benchmark took {time.monotonic() - started:.0f} s)")


def python_throughput(
    children: Children, url: str, runs: int, seconds: float
) -> dict[str, list[float]]:
    """Bulk throughput with Python peers: a server process per run, a client process."""
    results: dict[str, list[float]] = {
        k: [] for k in ("direct_up", "proxy_up", "direct_down", "proxy_down")
    }
    for i in range(runs):
        for label in ("direct", "proxy"):
            for direction in ("up", "down"):
                srv = socket.socket()
                srv.bind(("127.0.0.1", 0))
                srv.listen(1)
                port = srv.getsockname()[1]
                target = port
                if label == "proxy":
                    name = f"py{i}{direction}"
                    target = create_proxy(url, name, port)
                mode = "send" if direction == "up" else "recv"
                peer = subprocess.Popen(
                    [sys.executable, __file__, "--bulk", mode, str(target), str(seconds)],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                conn, _ = srv.accept()
                buf = bytearray(1 << 20)
                if direction == "up":
                    while conn.recv_into(buf):
                        pass
                    conn.close()
                else:
                    view, t0 = memoryview(buf), time.perf_counter()
                    while time.perf_counter() - t0 < seconds:
                        conn.sendall(view)
                    conn.close()
                out, _ = peer.communicate(timeout=seconds + 20)
                stats = json.loads(out)
                results[f"{label}_{direction}"].append(stats["bytes"] * 8 / stats["seconds"] / 1e9)
                srv.close()
                if label == "proxy":
                    api(url, "DELETE", f"/proxies/{name}")
    return results


if __name__ == "__main__":
    main()
