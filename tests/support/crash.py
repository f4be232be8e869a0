"""Crash-cleanup harness: SIGKILL a runner mid-drill, time how long until nothing is left.

Shared by tests/integration/test_crash_cleanup.py (a few trials per kind, in CI) and
benchmarks/crash_cleanup.py (>= 20 random moments). The inspector is given by the caller
and reads the live system (/proc, the Toxiproxy API, docker inspect), never the journal.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.tiny import cli_command, wait_journal

#: The issue's bound: everything reverted, with no human action, within this after the kill.
CLEANUP_BOUND_S = 5.0
FORCED_POINTS = ("intent_written", "injected", "outcome_written", "revert_issued")


@dataclass
class Trial:
    """One killed run and how long the system took to be clean again."""

    kind: str
    how: str  # a forced crash point, or "random"
    killed_after_s: float
    cleanup_s: float | None  # None: not clean within the bound


def trial_count() -> int:
    """Random moments per fault kind (the benchmark raises it)."""
    return int(os.environ.get("RESILDRILL_CRASH_TRIALS", "2"))


def run_trial(
    kind: str,
    drill: Path,
    out: Path,
    *,
    how: str,
    injected: Callable[[], bool],
    clean: Callable[[Path | None], bool],
    rng: random.Random,
) -> Trial:
    """Start `resildrill run`, kill it (forced point or random moment), wait until clean."""
    env = dict(os.environ)
    if how != "random":
        env["RESILDRILL_CRASH_AT"] = how
    started = time.monotonic()
    runner = subprocess.Popen(
        [*cli_command(env), "run", str(drill), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        if how == "random":
            deadline = time.monotonic() + 30
            while not injected() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert injected(), f"{kind}: the fault never appeared"
            time.sleep(rng.uniform(0.0, 1.5))
            runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(timeout=10)
    killed = time.monotonic()
    assert runner.returncode == -signal.SIGKILL, f"{kind}/{how}: exit {runner.returncode}"
    run_dirs = sorted(out.iterdir(), key=lambda p: p.stat().st_mtime)
    run_dir = run_dirs[-1] if run_dirs else None
    while time.monotonic() - killed < CLEANUP_BOUND_S:
        if clean(run_dir):
            took = round(time.monotonic() - killed, 3)
            # the watchdog journals its reverts just after making them: let it finish, or the
            # next trial's runner is refused for this run's journal (not counted as clean-up)
            wait_journal(out, "watchdog_done", CLEANUP_BOUND_S)
            return Trial(kind, how, round(killed - started, 3), took)
        time.sleep(0.01)
    return Trial(kind, how, round(killed - started, 3), None)


def write_figures(path: Path, trials: list[Trial]) -> dict[str, object]:
    """Write the trials and their p50/max clean-up time as JSON; return the summary."""
    done = sorted(t.cleanup_s for t in trials if t.cleanup_s is not None)
    summary: dict[str, object] = {
        "trials": len(trials),
        "random": sum(t.how == "random" for t in trials),
        "not_clean_within_5s": sum(t.cleanup_s is None for t in trials),
        "p50_s": done[len(done) // 2] if done else None,
        "max_s": done[-1] if done else None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"summary": summary, "trials": [t.__dict__ for t in trials]}, indent=1)
    )
    return summary
