"""Builders for a tiny target (one HTTP service process) and drills against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

SUPPORT = Path(__file__).resolve().parent
SERVICE = SUPPORT / "httpservice.py"
SUPERVISOR = SUPPORT / "supervise.py"


def service_command(port: int, pidfile: Path) -> list[str]:
    """The command line that starts the tiny service."""
    return [sys.executable, str(SERVICE), "--port", str(port), "--pidfile", str(pidfile)]


def write_target(folder: Path, port: int, *, recovery: str, timeout: str = "300ms") -> Path:
    """A target file for the tiny service (recovery: 'restart' or 'supervisor')."""
    service: dict[str, Any] = {
        "address": f"127.0.0.1:{port}",
        "process": {"pidfile": "web.pid"},
        "recovery": recovery,
    }
    if recovery == "restart":
        service["restart"] = {"command": service_command(port, folder / "web.pid")}
    doc = {
        "apiVersion": "resildrill/v1",
        "kind": "Target",
        "name": "tiny",
        "environment": "test",
        "services": {"web": service},
        "probes": [
            {
                "name": "web",
                "http": {"url": f"http://127.0.0.1:{port}/healthz"},
                "role": "clinical",
                "interval": "100ms",
                "timeout": timeout,
            }
        ],
    }
    path = folder / "target.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def write_drill(folder: Path, name: str, faults: list[dict[str, Any]], **extra: Any) -> Path:
    """A drill against ``target.yaml`` in the same folder."""
    doc: dict[str, Any] = {
        "apiVersion": "resildrill/v1",
        "kind": "Drill",
        "name": name,
        "target": "target.yaml",
        "slos": [{"probe": "web", "expect": "success_rate >= 0.99"}],
        "slo_window": "500ms",
        "stability_window": "1s",
        "phases": {"baseline": "1s", "recovery": "2s"},
        "faults": faults,
    }
    doc.update(extra)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def cli_command(env: dict[str, str] | None = None) -> list[str]:
    """How to start the CLI: as a user would, or through tests/support/runner_cli.py when
    ``env`` asks for one of the runner's test hooks (a crash point, no watchdog, a short
    heartbeat limit), which the shipped code does not read."""
    from tests.support.runner_cli import SWITCHES

    if env and any(env.get(name) for name in SWITCHES):
        return [sys.executable, str(SUPPORT / "runner_cli.py")]
    return [sys.executable, "-m", "resildrill"]


def resildrill(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI as a user would (with the test hooks ``env`` asks for)."""
    return subprocess.run(
        [*cli_command(env), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def kill_pidfile(pidfile: Path) -> None:
    """Stop whatever process a pidfile names (continuing it first if frozen)."""
    pid = read_pid(pidfile)
    if pid is None:
        return
    for sig in (signal.SIGCONT, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return


def load_report(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "report.json").read_text())


def process_fault(action: str, duration: str | None, fault_id: str | None = None) -> dict[str, Any]:
    """A process fault on the tiny service's ``web``, at the start of the fault phase."""
    fault: dict[str, Any] = {
        "id": fault_id or action,
        "kind": "process",
        "service": "web",
        "action": action,
        "at": "0s",
    }
    if duration is not None:
        fault["duration"] = duration
    return fault


def start_run(
    drill: Path,
    out: Path,
    *extra: str,
    capture: bool = True,
    stdin: int | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """Start `resildrill run` in the background (output captured or discarded; no terminal
    on stdin, so a manual step is answered only by `resildrill confirm` or --yes)."""
    pipe = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        [*cli_command(env), "run", str(drill), "--out", str(out), *extra],
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        stdout=pipe,
        stderr=pipe,
        text=True,
        env={**os.environ, **(env or {})},
    )


def wait_mark(reports: Path, kind: str, timeout: float) -> bool:
    """Whether a run under ``reports`` streamed a ``kind`` mark to its timeline.jsonl within
    ``timeout`` seconds (polled every 10 ms): how a test knows a step has happened before it
    interrupts the run."""
    start = time.monotonic()
    needle = f'"kind":"{kind}"'
    while time.monotonic() - start < timeout:
        for timeline in reports.glob("*/timeline.jsonl"):
            if needle in timeline.read_text(encoding="utf-8", errors="replace"):
                return True
        time.sleep(0.01)
    return False


def wait_journal(reports: Path, record_type: str, timeout: float) -> bool:
    """Whether a run under ``reports`` journalled a ``record_type`` record within ``timeout``
    seconds: e.g. ``watchdog_done``, written after the watchdog's reverts (a service seen
    running again is continued a moment before its revert is journalled)."""
    start = time.monotonic()
    needle = f'"type":"{record_type}"'
    while time.monotonic() - start < timeout:
        for journal in reports.glob("*/journal.jsonl"):
            text = journal.read_text(encoding="utf-8", errors="replace").replace(" ", "")
            if needle in text:
                return True
        time.sleep(0.01)
    return False


def wait_state(pid: int, states: tuple[str, ...], timeout: float) -> float | None:
    """Seconds until the process is in one of ``states`` (polled every 10 ms), or None."""
    from resildrill.faults.process import proc_state

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc_state(pid) in states:
            return time.monotonic() - start
        time.sleep(0.01)
    return None
