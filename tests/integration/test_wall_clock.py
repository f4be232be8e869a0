"""The report's wall clock is the wall time of its monotonic zero (issue 14, point 3).

The target's identity endpoint takes 0.7 s to answer, and the identity check runs before
the run starts. The outage a kill causes is dated on the wall clock from the report
(``clock.wall_t0`` + the first outage bucket) and by an independent 10 ms prober that
stamps each request with ``time.time()``: they agree within 150 ms (they were 0.7 s apart
when ``wall_t0`` was read before the guards).
"""

from __future__ import annotations

import http.server
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.conftest import SUPPORT, ManagedProcesses, free_port, wait_http
from tests.support.tiny import (
    SERVICE,
    kill_pidfile,
    load_report,
    process_fault,
    resildrill,
    write_drill,
    write_target,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]
IDENTITY_DELAY_S = 0.7


class _SlowIdentity(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(IDENTITY_DELAY_S)
        self.send_response(200)
        self.send_header("X-System", "pathlab-staging")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def identity_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowIdentity)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/whoami"
    finally:
        server.shutdown()
        server.server_close()


def test_outage_start_on_the_wall_clock_matches_an_independent_prober(
    tmp_path: Path, procs: ManagedProcesses, identity_url: str
) -> None:
    port = free_port()
    pidfile = tmp_path / "web.pid"
    procs.start(str(SERVICE), "--port", str(port), "--pidfile", str(pidfile))
    wait_http(port)
    target = write_target(tmp_path, port, recovery="restart", timeout="200ms")
    doc = yaml.safe_load(target.read_text())
    doc["identity"] = {"url": identity_url, "header": "X-System", "value": "pathlab-staging"}
    target.write_text(yaml.safe_dump(doc, sort_keys=False))
    drill = write_drill(tmp_path, "wall", [process_fault("kill", "700ms")])
    truth = tmp_path / "truth.txt"
    prober = procs.start(
        str(SUPPORT / "truthprober.py"),
        "--port",
        str(port),
        "--timeout",
        "0.2",
        "--duration",
        "60",
        "--out",
        str(truth),
    )
    try:
        result = resildrill("run", str(drill), "--out", str(tmp_path / "reports"))
    finally:
        prober.send_signal(signal.SIGTERM)
        prober.wait(timeout=30)
        kill_pidfile(pidfile)
    assert result.returncode == 0, result.stdout + result.stderr
    report = load_report(Path(result.stdout.strip().splitlines()[-1]))
    outage = report["timeline"]["series"]["outage"]["values"]
    first = outage.index(1)
    reported_wall = report["clock"]["wall_t0"] + first * report["timeline"]["resolution_s"]
    injected_mono = report["clock"]["monotonic_t0"] + report["faults"][0]["injected_at_s"] - 0.05
    rows = [ln.split() for ln in truth.read_text().splitlines()]
    true_wall = next(float(w) for m, ok, w in rows if float(m) >= injected_mono and ok == "0")
    skew = reported_wall - true_wall
    print(f"\noutage start: report {reported_wall:.3f}, prober {true_wall:.3f}, {skew:+.3f} s")
    assert abs(skew) <= 0.150, skew
