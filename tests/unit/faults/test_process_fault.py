"""The process fault kind on real processes (sleepers this test starts and stops): the
locators, the exact count, terminate, the start-time guard against pid reuse, and a tree."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resildrill.clock import MonotonicClock
from resildrill.drill.model import ProcessLocator, TargetSpec
from resildrill.errors import InjectionFailed
from resildrill.faults.base import FaultContext
from resildrill.faults.process import (
    ProcessFaultBackend,
    ProcessFaultSpec,
    descendants,
    find_processes,
    proc_cmdline,
    proc_state,
)

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
PARENT = [
    sys.executable,
    "-c",
    "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)",
]


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; each is killed (with its children) and reaped after."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        for child in descendants(p.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        p.kill()
        p.wait(timeout=5)


def start(procs: list[subprocess.Popen[bytes]], cmd: list[str]) -> subprocess.Popen[bytes]:
    """Start ``cmd`` and wait until the child runs it: Popen returns after the fork, and
    until the exec the child still carries this process's command line (seen under load)."""
    p = subprocess.Popen(cmd)
    procs.append(p)
    deadline = time.monotonic() + 10
    while proc_cmdline(p.pid) != " ".join(cmd) and time.monotonic() < deadline:
        time.sleep(0.01)
    return p


def ctx_for(tmp_path: Path, process: dict[str, Any]) -> FaultContext:
    target = TargetSpec.model_validate(
        {
            "apiVersion": "resildrill/v1",
            "kind": "Target",
            "name": "sleepers",
            "environment": "test",
            "services": {"sleeper": {"process": process, "recovery": "supervisor"}},
            "probes": [{"name": "p", "tcp": {"host": "127.0.0.1", "port": 9}}],
        }
    )
    return FaultContext(target=target, target_dir=tmp_path, run_id="t", clock=MonotonicClock())


def spec(action: str, scope: str = "process") -> ProcessFaultSpec:
    return ProcessFaultSpec.model_validate(
        {
            "id": "f",
            "kind": "process",
            "service": "sleeper",
            "action": action,
            "at": "0s",
            "scope": scope,
        }
    )


def wait_state(pid: int, states: tuple[str | None, ...]) -> str | None:
    deadline = time.monotonic() + 5
    state = proc_state(pid)
    while state not in states and time.monotonic() < deadline:
        time.sleep(0.01)
        state = proc_state(pid)
    return state


def test_pid_locator_and_terminate(tmp_path: Path, started: list[Any]) -> None:
    """A `pid` locator finds the process; terminate sends SIGTERM (it exits)."""
    p = start(started, SLEEPER)
    backend = ProcessFaultBackend()
    ctx = ctx_for(tmp_path, {"pid": p.pid})
    assert backend.preflight(spec("terminate"), ctx) == []
    recipe = backend.prepare(spec("terminate"), ctx)
    backend.inject(spec("terminate"), recipe, ctx)
    assert p.wait(timeout=5) == -signal.SIGTERM


def test_match_locator_needs_the_exact_count(tmp_path: Path, started: list[Any]) -> None:
    """A `match` locator with count 2 finds both sleepers; with only one running, preflight
    and prepare refuse, and nothing is signalled."""
    marker = f"import time; time.sleep(60)  # {tmp_path.name}"
    cmd = [sys.executable, "-c", marker]
    a, b = start(started, cmd), start(started, cmd)
    match = " ".join(cmd)
    assert sorted(find_processes(ProcessLocator(match=match), tmp_path)) == sorted([a.pid, b.pid])
    backend = ProcessFaultBackend()
    assert backend.preflight(spec("freeze"), ctx_for(tmp_path, {"match": match, "count": 2})) == []
    b.kill()
    b.wait(timeout=5)
    ctx = ctx_for(tmp_path, {"match": match, "count": 2})
    [problem] = backend.preflight(spec("freeze"), ctx)
    assert "expected 2 process(es), found 1" in problem
    with pytest.raises(InjectionFailed, match="nothing injected"):
        backend.prepare(spec("freeze"), ctx)
    assert proc_state(a.pid) in ("S", "R")


def test_reused_pid_is_never_signalled(tmp_path: Path, started: list[Any]) -> None:
    """A recipe whose start time no longer matches the pid (the kernel reused it) is refused
    at injection and treated as gone at revert: the unrelated process is untouched."""
    p = start(started, SLEEPER)
    backend = ProcessFaultBackend()
    ctx = ctx_for(tmp_path, {"pid": p.pid})
    recipe = backend.prepare(spec("freeze"), ctx)
    recipe["processes"][0]["start_time"] -= 1  # as if another process had owned this pid
    with pytest.raises(InjectionFailed, match="no longer the recorded process"):
        backend.inject(spec("freeze"), recipe, ctx)
    assert proc_state(p.pid) in ("S", "R")
    assert backend.revert(recipe) == "nothing frozen"


def test_tree_scope_freezes_children_and_revert_continues_them(
    tmp_path: Path, started: list[Any]
) -> None:
    """scope: tree records the child with its start time, freezes both, continues both."""
    parent = start(started, PARENT)
    sleeper = " ".join(SLEEPER)

    def child_running() -> bool:
        # the child has exec'd its own command (not the parent's, mid-spawn)
        kids = descendants(parent.pid)
        return len(kids) == 1 and proc_cmdline(kids[0]) == sleeper

    deadline = time.monotonic() + 10
    while not child_running() and time.monotonic() < deadline:
        time.sleep(0.01)
    [child] = descendants(parent.pid)
    backend = ProcessFaultBackend()
    ctx = ctx_for(tmp_path, {"pid": parent.pid})
    recipe = backend.prepare(spec("freeze", "tree"), ctx)
    assert [p["pid"] for p in recipe["processes"]] == [parent.pid, child]
    assert recipe["processes"][1]["descendant_of"] == parent.pid
    backend.inject(spec("freeze", "tree"), recipe, ctx)
    assert wait_state(parent.pid, ("T",)) == "T" and wait_state(child, ("T",)) == "T"
    assert backend.is_injected(recipe)
    backend.revert(recipe)
    assert wait_state(child, ("S", "R")) in ("S", "R")
    assert not backend.is_injected(recipe)
