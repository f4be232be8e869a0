"""A pidfile counts only while it still names its process: a stale or planted one never
gets an unrelated process signalled (issue 19, point 4)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from resildrill.drill.model import ProcessLocator
from resildrill.faults.process import find_processes, proc_start_time, proc_state, read_pidfile


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated process the pidfiles below point at."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait(5)


def test_pid_and_start_time_that_match_are_found(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    path = tmp_path / "svc.pid"
    path.write_text(f"{bystander.pid} {proc_start_time(bystander.pid)}\n")
    assert read_pidfile(path) == (bystander.pid, None)
    assert find_processes(ProcessLocator(pidfile=str(path)), tmp_path) == [bystander.pid]


def test_a_start_time_that_differs_is_refused(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    path = tmp_path / "svc.pid"
    path.write_text(f"{bystander.pid} {(proc_start_time(bystander.pid) or 0) - 500}\n")
    pid, problem = read_pidfile(path)
    assert pid is None and problem is not None and "another process" in problem
    assert find_processes(ProcessLocator(pidfile=str(path)), tmp_path) == []


def test_a_bare_pid_written_before_the_process_started_is_refused(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    """A pidfile last written an hour ago cannot name a process that started just now."""
    path = tmp_path / "svc.pid"
    path.write_text(f"{bystander.pid}\n")
    an_hour_ago = time.time() - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))
    pid, problem = read_pidfile(path)
    assert pid is None and problem is not None and "started after the pidfile" in problem
    assert find_processes(ProcessLocator(pidfile=str(path)), tmp_path) == []


def test_a_fresh_bare_pid_is_found(tmp_path: Path, bystander: subprocess.Popen[bytes]) -> None:
    path = tmp_path / "svc.pid"
    path.write_text(f"{bystander.pid}\n")
    assert read_pidfile(path) == (bystander.pid, None)


def test_the_process_fault_signals_nothing_through_a_planted_pidfile(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    """End to end through the backend: preflight says why, prepare refuses, the bystander
    keeps running (never stopped)."""
    from resildrill.clock import MonotonicClock
    from resildrill.drill.model import TargetSpec
    from resildrill.errors import InjectionFailed
    from resildrill.faults.base import FaultContext
    from resildrill.faults.process import ProcessFaultBackend, ProcessFaultSpec

    (tmp_path / "svc.pid").write_text(f"{bystander.pid} 1\n")
    target = TargetSpec.model_validate(
        {
            "apiVersion": "resildrill/v1",
            "kind": "Target",
            "name": "t",
            "environment": "test",
            "services": {"svc": {"process": {"pidfile": "svc.pid"}, "recovery": "none"}},
            "probes": [{"name": "p", "tcp": {"host": "127.0.0.1", "port": 9}}],
        }
    )
    ctx = FaultContext(target, tmp_path, "r", MonotonicClock())
    spec = ProcessFaultSpec.model_validate(
        {"id": "f", "kind": "process", "service": "svc", "action": "freeze", "at": "0s"}
    )
    backend = ProcessFaultBackend()
    assert any("stale pidfile" in p for p in backend.preflight(spec, ctx))
    with pytest.raises(InjectionFailed, match="stale pidfile"):
        backend.prepare(spec, ctx)
    assert proc_state(bystander.pid) in ("S", "R")
