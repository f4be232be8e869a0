"""The guard program on its own, run locally as the runner runs it on a host (``guard.py
serve`` over a pipe instead of an SSH channel): its protocol, its journal, and each way it
reverts by itself. The victims are real processes; their state is read from /proc.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resildrill.remote import guard as g
from resildrill.remote.ssh import GUARD_FILE, quote_argv

pytestmark = pytest.mark.timeout(60)


class Served:
    """``guard.py serve`` with a pipe for its channel."""

    def __init__(self, state: Path, run: str, timeout: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, GUARD_FILE, "serve", "--state", str(state), "--run", run,
             "--heartbeat-timeout", str(timeout)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )  # fmt: skip
        self.ids = 0

    def call(self, op: str, **kw: Any) -> dict[str, Any]:
        self.ids += 1
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps({"id": self.ids, "op": op, **kw}) + "\n").encode())
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        assert answer["id"] == self.ids
        return dict(answer)

    def close_channel(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


@pytest.fixture
def victim() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    os.kill(proc.pid, signal.SIGCONT)
    proc.kill()
    proc.wait()


def _reverted_by(journal: Path) -> str:
    """Who the guard's journal says reverted the fault ('' while it has not)."""
    return next((r["by"] for r in g.read_records(journal) if r["t"] == "reverted"), "")


def _state(pid: int) -> str | None:
    return g.state(pid)


def _wait(check: Any, timeout: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.01)
    return None


def _freeze(s: Served, victim: subprocess.Popen[bytes], fault: str = "f") -> dict[str, Any]:
    found = s.call("select", locator={"pid": victim.pid})
    assert found["ok"] and len(found["processes"]) == 1
    return s.call("apply", fault=fault, action="signal", signal="STOP",
                  processes=found["processes"])  # fmt: skip


def test_freeze_and_revert_by_the_runner(tmp_path: Path, victim: subprocess.Popen[bytes]) -> None:
    s = Served(tmp_path, "r1", 5)
    assert s.call("hello")["protocol"] == g.PROTOCOL
    assert _freeze(s, victim)["ok"]
    assert _state(victim.pid) == "T"
    assert s.call("status", fault="f")["in_place"] is True
    reverted = s.call("revert", fault="f")
    assert "SIGCONT" in reverted["detail"] and _state(victim.pid) in ("S", "R")
    assert s.call("bye")["reverted"] == []
    s.close_channel()
    records = g.read_records(tmp_path / "r1.jsonl")
    kinds = [r["t"] for r in records]
    assert kinds == ["guard_started", "applying", "applied", "reverted", "guard_ended"]
    assert records[3]["by"] == "the runner"


def test_reverts_when_the_channel_ends_without_bye(
    tmp_path: Path, victim: subprocess.Popen[bytes]
) -> None:
    s = Served(tmp_path, "r2", 30)
    _freeze(s, victim)
    s.close_channel()  # the runner was killed: its end of the channel closes
    assert _wait(lambda: _state(victim.pid) in ("S", "R"), 2) is not None
    assert _wait(lambda: _reverted_by(tmp_path / "r2.jsonl"), 2) is not None
    assert "without a hand-off" in _reverted_by(tmp_path / "r2.jsonl")


def test_reverts_when_heartbeats_stop(tmp_path: Path, victim: subprocess.Popen[bytes]) -> None:
    s = Served(tmp_path, "r3", 1.0)
    _freeze(s, victim)
    start = time.monotonic()
    took = _wait(lambda: _state(victim.pid) in ("S", "R"), 5)  # the channel stays open
    assert took is not None and 0.8 <= time.monotonic() - start <= 3.0
    assert _wait(lambda: _reverted_by(tmp_path / "r3.jsonl"), 2) is not None
    assert "no heartbeat" in _reverted_by(tmp_path / "r3.jsonl")
    s.close_channel()


def test_beats_keep_a_fault_in_place(tmp_path: Path, victim: subprocess.Popen[bytes]) -> None:
    s = Served(tmp_path, "r4", 1.0)
    _freeze(s, victim)
    for _ in range(8):  # 2 s of beats every 250 ms: twice the timeout
        time.sleep(0.25)
        assert s.call("beat")["ok"]
    assert _state(victim.pid) == "T"
    s.call("bye")
    s.close_channel()
    assert _state(victim.pid) in ("S", "R")


def test_max_lifetime(tmp_path: Path, victim: subprocess.Popen[bytes]) -> None:
    s = Served(tmp_path, "r5", 30)
    found = s.call("select", locator={"pid": victim.pid})
    s.call("apply", fault="f", action="signal", signal="STOP", processes=found["processes"],
           lifetime_s=0.5)  # fmt: skip
    assert _wait(lambda: _state(victim.pid) in ("S", "R"), 3) is not None
    assert _wait(lambda: _reverted_by(tmp_path / "r5.jsonl"), 2) is not None
    assert "maximum lifetime" in _reverted_by(tmp_path / "r5.jsonl")
    s.close_channel()


def test_throttle_duty_cycle(tmp_path: Path, victim: subprocess.Popen[bytes]) -> None:
    s = Served(tmp_path, "r6", 30)
    found = s.call("select", locator={"pid": victim.pid})
    s.call("apply", fault="t", action="throttle", processes=found["processes"],
           period_s=0.2, stop_fraction=0.5)  # fmt: skip
    seen = set()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        seen.add(_state(victim.pid))
        time.sleep(0.01)
    assert "T" in seen and ({"S", "R"} & seen), seen  # stopped and running in turn
    s.call("revert", fault="t")
    time.sleep(0.3)
    assert _state(victim.pid) in ("S", "R")
    s.close_channel()


def test_rollback_is_idempotent_and_reads_the_journal(
    tmp_path: Path, victim: subprocess.Popen[bytes]
) -> None:
    journal = g.HostJournal(tmp_path, "crashed")
    st = g.start_time(victim.pid)
    undo = {"kind": "cont", "processes": [{"pid": victim.pid, "start_time": st}]}
    journal.append("applying", fault="f", undo=undo)
    os.kill(victim.pid, signal.SIGSTOP)  # the guard died between acting and journalling
    first = g.rollback(tmp_path, "crashed", None)
    assert [r["fault"] for r in first["reverted"]] == ["f"]
    assert _state(victim.pid) in ("S", "R")
    assert g.rollback(tmp_path, "crashed", None) == {"reverted": [], "failed": [], "already": []}


def test_disk_fill_floor(tmp_path: Path) -> None:
    plan = g.disk_plan(str(tmp_path), 100.0, 10**9)  # a floor larger than the disk
    assert plan["bytes"] == 0 and plan["capped_by_floor"]


def test_never_selects_its_own_chain() -> None:
    own = g._ancestors(os.getpid())
    found = g.select_processes({"pid": os.getpid()})
    assert found["processes"] == [] and os.getpid() in own


def test_argv_quoting_keeps_shell_syntax_literal() -> None:
    line = quote_argv(["echo", "$(touch x)", "a; b", "c\nd", "'q'"])
    out = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True, check=True)
    assert out.stdout == "$(touch x) a; b c\nd 'q'\n"


def test_memory_hog_by_share_of_ram(tmp_path: Path) -> None:
    s = Served(tmp_path, "r7", 30)
    answer = s.call("apply", fault="m", action="memory", percent=0.1)  # 0.1% of this RAM
    total_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    [pid] = answer["pids"]
    rss_kib = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    assert rss_kib >= total_kib * 0.001 * 0.9, (rss_kib, total_kib)
    s.call("revert", fault="m")
    assert g.state(pid) is None
    s.close_channel()
