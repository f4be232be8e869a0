"""The ward EHR's supervisor on its own: restart delay, crash-loop back-off, pidfiles, stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from wardehr._proc import live_pid, read_pidfile

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SUPERVISOR = [sys.executable, "-m", "wardehr.supervisor", "--plan"]


def start(tmp_path: Path, children: list[dict[str, Any]], delay: float) -> subprocess.Popen[bytes]:
    """Run a supervisor on a plan of ``children`` in its own session."""
    plan = {
        "pidfile": str(tmp_path / "supervisor.pid"),
        "status_file": str(tmp_path / "supervisor.json"),
        "restart_delay_s": delay,
        "liveness_failures": 0,
        "children": children,
    }
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    return subprocess.Popen(
        [*SUPERVISOR, str(tmp_path / "plan.json")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_for(check: Any, timeout_s: float) -> Any:
    """Poll ``check`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s")


def status(tmp_path: Path) -> dict[str, Any]:
    """The supervisor's status file."""
    try:
        data: dict[str, Any] = json.loads((tmp_path / "supervisor.json").read_text())
    except (OSError, ValueError):
        return {}
    return data


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the supervisor and reap it (SIGKILL if it hangs)."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def test_killed_child_is_restarted_after_the_delay(tmp_path: Path) -> None:
    """SIGKILL of a child: a new process after restart_delay, with its pidfile rewritten;
    SIGTERM to the supervisor stops the child and removes both pidfiles."""
    child = {
        "name": "sleeper",
        "argv": ["sleep", "60"],
        "pidfile": str(tmp_path / "s.pid"),
        "log": str(tmp_path / "s.log"),
    }
    proc = start(tmp_path, [child], delay=0.5)
    try:
        first = wait_for(lambda: live_pid(tmp_path / "s.pid"), 10)
        killed_at = time.monotonic()
        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: (p := live_pid(tmp_path / "s.pid")) != first and p, 10)
        took = time.monotonic() - killed_at
        assert second != first
        assert 0.5 <= took < 3.0  # the delay, plus room for a busy machine
        # the pidfile is written before the status file: wait for the status to catch up
        wait_for(
            lambda: status(tmp_path).get("children", {}).get("sleeper", {}).get("pid") == second,
            5,
        )
        assert status(tmp_path)["children"]["sleeper"]["restarts"] == 1
        assert status(tmp_path)["children"]["sleeper"]["last_exit"] == -signal.SIGKILL
    finally:
        stop(proc)
    assert proc.returncode == 0
    assert read_pidfile(tmp_path / "s.pid") is None
    assert read_pidfile(tmp_path / "supervisor.pid") is None
    assert live_pid(tmp_path / "s.pid") is None


def test_crash_loop_backs_off(tmp_path: Path) -> None:
    """A child that dies at once is restarted with doubling delays, not in a tight loop."""
    child = {
        "name": "crasher",
        "argv": ["false"],
        "pidfile": str(tmp_path / "c.pid"),
        "log": str(tmp_path / "c.log"),
    }
    proc = start(tmp_path, [child], delay=0.2)
    try:
        wait_for(lambda: status(tmp_path).get("children"), 10)
        time.sleep(2.5)
        restarts = status(tmp_path)["children"]["crasher"]["restarts"]
    finally:
        stop(proc)
    # delays 0.2, 0.4, 0.8, 1.6 s: about 3 restarts in 2.5 s; a tight loop would make dozens
    assert 2 <= restarts <= 5


def test_frozen_child_is_killed_by_liveness_checks(tmp_path: Path) -> None:
    """A child whose /livez stops answering is SIGKILLed after the configured failures and
    restarted; a live one is left alone."""
    from wardehr.stack import free_port

    port = free_port()
    server = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    child = {
        "name": "web",
        "argv": server,
        "pidfile": str(tmp_path / "w.pid"),
        "log": str(tmp_path / "w.log"),
        "livez": f"http://127.0.0.1:{port}/",
    }
    plan_children = [child]
    plan = {
        "pidfile": str(tmp_path / "supervisor.pid"),
        "status_file": str(tmp_path / "supervisor.json"),
        "restart_delay_s": 0.2,
        "liveness_interval_s": 0.3,
        "liveness_failures": 3,
        "children": plan_children,
    }
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wardehr.supervisor",
            "--plan",
            str(tmp_path / "plan.json"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        first = wait_for(lambda: live_pid(tmp_path / "w.pid"), 10)
        time.sleep(1.5)  # several passing checks: not killed
        assert live_pid(tmp_path / "w.pid") == first
        os.kill(first, signal.SIGSTOP)
        second = wait_for(lambda: (p := live_pid(tmp_path / "w.pid")) != first and p, 10)
        assert second != first
        assert status(tmp_path)["children"]["web"]["liveness_kills"] == 1
    finally:
        stop(proc)
