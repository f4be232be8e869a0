"""The dead man's switch on a remote host: SIGKILL the runner (and, with no watchdog, nothing
on the runner's machine is left to undo anything) while a fault is held on an SSH host; a
poller *inside the host* times how long until the host's guard has reverted it by itself.

Shared by tests/integration/docker/test_remote_deadman.py (a few trials in CI) and
benchmarks/remote_deadman.py (>= 20 trials, p50 and max).
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from remote_support import Estate, drill_doc, poller, read_poll, wait_for, write_yaml
from tests.support.tiny import cli_command, resildrill, wait_journal

BOUND_S = 5.0

#: kind -> (fault, host, inspector snippet printing 1 while the fault is in place)
FAULTS: dict[str, tuple[dict[str, Any], str, str]] = {
    "freeze": (
        {"kind": "process", "service": "victim", "action": "freeze"},
        "replica-a",
        "s=$(cut -d' ' -f3 /proc/$(cat /tmp/victim.pid)/stat); [ \"$s\" = T ] && echo 1 || echo 0",
    ),
    "cpu": (
        {"kind": "resource", "host": "replica-b", "cpu": {"cores": 1}},
        "replica-b",
        "pgrep -fc '[w]hile True' || true",
    ),
    "disk": (
        {
            "kind": "resource",
            "host": "database",
            "disk": {"path": "/var/lib/wardehr", "fill_to": "60%"},
        },
        "database",
        "ls -A /var/lib/wardehr | grep -c resildrill-fill || true",
    ),
}


@dataclass
class DeadmanTrial:
    kind: str
    killed_after_s: float
    reverted_after_kill_s: float | None
    rollback_exit: int


def prepare_victim(estate: Estate) -> None:
    """A process on replica-a for freeze trials, found by its exact command line."""
    estate.sh(
        "replica-a",
        "[ -f /tmp/victim.pid ] && kill -0 $(cat /tmp/victim.pid) 2>/dev/null"
        " || { nohup sleep 86400.5 >/dev/null 2>&1 & echo $! > /tmp/victim.pid; }",
    )
    doc = yaml.safe_load(estate.target.read_text())
    doc["services"]["victim"] = {
        "host": "replica-a",
        "process": {"match": "sleep 86400.5"},
        "recovery": "none",
    }
    estate.target.write_text(yaml.safe_dump(doc, sort_keys=False))


def run_deadman_trial(estate: Estate, kind: str, rng: random.Random, out: Path) -> DeadmanTrial:
    fault, host, snippet = FAULTS[kind]
    name = f"deadman-{kind}-{uuid.uuid4().hex[:6]}"
    drill = write_yaml(
        estate.folder / f"{name}.yaml",
        drill_doc(name, [{"id": kind, "at": "0s", "duration": "60s", **fault}]),
    )
    reports = out / name
    polled = out / f"{name}.poll"
    watch = poller(estate, host, snippet, polled)
    env = {**os.environ, "RESILDRILL_TEST_WATCHDOG": "off"}  # only the guard can undo it
    runner = subprocess.Popen(
        [*cli_command(env), "run", str(drill), "--out", str(reports)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    started = time.monotonic()
    try:
        assert wait_journal(reports, "injected", 60), f"{kind}: never injected"
        assert wait_for(lambda: _held(polled), 10) is not None, f"{kind}: not seen in the host"
        time.sleep(rng.uniform(0.0, 1.5))
        killed = time.monotonic()
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
        wait_for(lambda: _released_after(polled, killed) is not None, BOUND_S + 5)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(timeout=10)
        watch.terminate()
        watch.wait(timeout=10)
    released = _released_after(polled, killed)
    # the run's journal still shows the fault: rollback reads the host's journal and finds
    # it reverted by the guard (and lets the next run against this target start)
    journal = next(reports.glob("*/journal.jsonl"))
    rolled = resildrill("rollback", str(journal), timeout=90)
    return DeadmanTrial(
        kind,
        round(killed - started, 3),
        None if released is None else round(released - killed, 3),
        rolled.returncode,
    )


def _rows(path: Path) -> list[tuple[float, int]]:
    rows = []
    for t, value in read_poll(path):
        try:
            rows.append((t, int(value.split()[-1])))
        except (ValueError, IndexError):
            continue
    return rows


def _held(path: Path) -> bool:
    rows = _rows(path)
    return bool(rows) and rows[-1][1] > 0


def _released_after(path: Path, killed: float) -> float | None:
    """The first poll after the kill that shows the fault gone (kept gone after it)."""
    rows = [(t, v) for t, v in _rows(path) if t >= killed]
    for i, (t, v) in enumerate(rows):
        if v == 0 and all(w == 0 for _, w in rows[i:]):
            return t
    return None


def summary(trials: list[DeadmanTrial]) -> dict[str, Any]:
    times = [t.reverted_after_kill_s for t in trials if t.reverted_after_kill_s is not None]
    return {
        "trials": len(trials),
        "reverted": len(times),
        "p50_s": round(statistics.median(times), 3) if times else None,
        "max_s": max(times) if times else None,
        "by_kind": {k: [t.reverted_after_kill_s for t in trials if t.kind == k] for k in FAULTS},
        "rollback_exits": sorted({t.rollback_exit for t in trials}),
    }
