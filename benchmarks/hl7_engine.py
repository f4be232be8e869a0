"""Benchmark: results per second through the interface engine, and delivery delay at half that.

Starts a ward EHR replica with its MLLP inbound and the engine in front of it (real processes
on 127.0.0.1, SQLite stores in a temporary folder), then:

1. **throughput**: ``--senders`` lab connections send ORU^R01 results as fast as the engine
   acknowledges them for ``--seconds``; accepted per second, and filed per second (when the
   EHR's store shows the last one filed);
2. **delay at 50%**: one sender paced at half the filed rate for ``--seconds``; each result's
   delivery delay is its filing time in the EHR (``meta.lastUpdated``, read from the EHR's store
   file) minus the moment it was sent: p50, p95, max.

    .venv/bin/python benchmarks/hl7_engine.py [--seconds 10] [--senders 4]
"""

from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]

from resildrill.hl7.messages import MessageFactory, Patient, Result  # noqa: E402
from resildrill.hl7.mllp import MllpClient  # noqa: E402
from wardehr.engine import backlog  # noqa: E402
from wardehr.hl7_inbound import MSH10_SYSTEM  # noqa: E402

PATIENT = Patient("SYN0200", "Benchmark", "Delta")
RESULT = [Result("718-7", "Hemoglobin", "13.2", "g/dL")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int) -> None:
    for _ in range(400):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("EHR did not start")


def wait_port(port: int) -> None:
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing on {port}")


def filed_times(db: Path) -> dict[str, float]:
    """control id -> filing time (epoch seconds), from the EHR's store file."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("SELECT body FROM resource WHERE type='DiagnosticReport'").fetchall()
    finally:
        conn.close()
    out = {}
    for (body,) in rows:
        doc = json.loads(body)
        for ident in doc.get("identifier", []):
            if ident.get("system") == MSH10_SYSTEM:
                stamp = doc["meta"]["lastUpdated"].replace("Z", "+00:00")
                out[ident["value"]] = datetime.fromisoformat(stamp).timestamp()
    return out


def drain(queue: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while backlog(str(queue)) > 0 and time.monotonic() < deadline:
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--senders", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        http, mllp, eng = free_port(), free_port(), free_port()
        db, queue = folder / "ward.sqlite", folder / "queue.sqlite"
        py = sys.executable
        procs = [
            subprocess.Popen(
                [
                    py,
                    "-m",
                    "wardehr.server",
                    "--name",
                    "ehr",
                    "--listen",
                    f"127.0.0.1:{http}",
                    "--db",
                    str(db),
                    "--seed",
                    "7",
                    "--mllp-listen",
                    f"127.0.0.1:{mllp}",
                ],
                stderr=subprocess.DEVNULL,
            ),
        ]
        try:
            wait_http(http)
            wait_port(mllp)
            procs.append(
                subprocess.Popen(
                    [
                        py,
                        "-m",
                        "wardehr.engine",
                        "--listen",
                        f"127.0.0.1:{eng}",
                        "--forward",
                        f"127.0.0.1:{mllp}",
                        "--queue",
                        str(queue),
                    ],
                    stderr=subprocess.DEVNULL,
                )
            )
            wait_port(eng)
            rate = throughput(eng, db, queue, args.seconds, args.senders)
            delays(eng, db, queue, args.seconds, rate / 2)
        finally:
            for p in procs:
                p.kill()
                p.wait(timeout=10)


def throughput(port: int, db: Path, queue: Path, seconds: float, senders: int) -> float:
    sent: list[tuple[str, float]] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def sender(n: int) -> None:
        client = MllpClient("127.0.0.1", port, timeout_s=5)
        factory = MessageFactory(f"tp{n}")
        while time.monotonic() < stop:
            message, cid = factory.oru(PATIENT, RESULT)
            if client.send(message, cid).accepted:
                with lock:
                    sent.append((cid, time.time()))
        client.close()

    start_wall = time.time()
    threads = [threading.Thread(target=sender, args=(n,)) for n in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    drain(queue)
    filed = filed_times(db)
    last_filed = max(filed[c] for c, _ in sent if c in filed)
    accepted_rate = len(sent) / seconds
    filed_rate = len(sent) / (last_filed - start_wall)
    lost = sum(1 for c, _ in sent if c not in filed)
    print(
        f"throughput: {len(sent)} results accepted in {seconds:g} s by {senders} senders: "
        f"{accepted_rate:.0f}/s accepted, {filed_rate:.0f}/s filed end to end; lost {lost}"
    )
    return filed_rate


def delays(port: int, db: Path, queue: Path, seconds: float, rate: float) -> None:
    client = MllpClient("127.0.0.1", port, timeout_s=5)
    factory = MessageFactory("paced")
    sent: list[tuple[str, float]] = []
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        due = start + n / rate
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        message, cid = factory.oru(PATIENT, RESULT)
        at = time.time()
        if client.send(message, cid).accepted:
            sent.append((cid, at))
        n += 1
    client.close()
    drain(queue)
    filed = filed_times(db)
    ms = sorted((filed[c] - at) * 1000 for c, at in sent if c in filed)
    p95 = ms[int(0.95 * (len(ms) - 1))]
    print(
        f"delivery delay at {rate:.0f}/s (50% of the filed rate), {len(ms)} results: "
        f"p50 {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
