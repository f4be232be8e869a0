"""The dead man's switch: a separate process that reverts a run's faults if its runner dies.

Started by the runner before its first injection, in its own session (a Ctrl-C in the
terminal does not reach it). It follows the runner's heartbeat file and the journal:

- runner process gone (pid *and* start time checked) or heartbeat older than
  ``--stale-after`` -> write a fencing record, revert everything still injected, stop the
  helper processes the runner journalled (``child`` records: Locust, never the target's
  proxy), check every proxied hop carries traffic (``proxy_paths``), exit;
- a fault older than its ``expires_at`` (``max_fault_lifetime``) -> revert it even though
  the runner is alive (a stuck runner must not keep a fault in place), fencing record;
- ``run_end`` in the journal -> the run finished cleanly, exit.

A runner that wakes up after being fenced sees ``FENCED`` in its run folder and does
nothing more but report.

    python -m resildrill.runner.watchdog --run-dir DIR --runner-pid PID --runner-start TICKS
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from resildrill.errors import JournalUnreadable
from resildrill.faults.process import is_same_process, proc_start_time
from resildrill.plugins import FaultRegistry
from resildrill.runner.journal import Journal, pending_faults, read_journal
from resildrill.runner.registry import unregister_run
from resildrill.runner.rollback import check_journal_paths, revert_all_pending

POLL_S = 0.05
#: A watchdog never outlives a day, whatever happens.
MAX_LIFETIME_S = 86_400.0


def fence(run_dir: Path, reason: str) -> None:
    """Mark the run fenced: its runner must take no further action."""
    tmp = run_dir / "FENCED.tmp"
    tmp.write_text(reason + "\n")
    tmp.replace(run_dir / "FENCED")


def heartbeat_age(run_dir: Path) -> float:
    """Seconds since the runner last beat (monotonic), or 0 when it has not yet."""
    try:
        beat = float((run_dir / "heartbeat").read_text())
    except (OSError, ValueError):
        return 0.0  # unreadable this instant: judge on the next poll

    return time.monotonic() - beat


def stop_children(records: list[dict[str, object]]) -> list[str]:
    """Stop processes the runner started for the run (load), checking their start times."""
    stopped = []
    for r in records:
        if r.get("type") != "child":
            continue
        pid, start = int(str(r["pid"])), int(str(r["start_time"]))
        if is_same_process(pid, start):
            try:
                os.killpg(pid, signal.SIGKILL) if r.get("group") else os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            stopped.append(f"{r.get('role', 'child')} pid {pid}")
    return stopped


def revert_all(run_dir: Path, registry: FaultRegistry, reason: str) -> None:
    """Fence the run and revert every pending fault of its journal, newest first."""
    fence(run_dir, reason)
    path = run_dir / "journal.jsonl"
    try:
        records = read_journal(path, verify=True)
    except JournalUnreadable as exc:
        # never act on a journal someone else wrote or changed: say so where people look
        print(f"watchdog: {exc}; nothing reverted (resildrill rollback after checking)", flush=True)
        return
    with Journal(path) as journal:
        journal.append("fenced", by="watchdog", reason=reason, pid=os.getpid())
        revert_all_pending(list(reversed(pending_faults(records))), registry, journal)
        stopped = stop_children(records)
        # the target's proxied hops must carry traffic again (the proxy is never stopped)
        paths = [c.describe() for c in check_journal_paths(records)]
        journal.append("watchdog_done", stopped=stopped, paths=paths)


def watch(run_dir: Path, runner_pid: int, runner_start: int, stale_after: float) -> str:
    """Follow the run until it ends cleanly or must be reverted; returns what happened."""
    registry = FaultRegistry.discover()
    path = run_dir / "journal.jsonl"
    started = time.monotonic()
    (run_dir / "watchdog.pid").write_text(f"{os.getpid()}\n")
    while time.monotonic() - started < MAX_LIFETIME_S:
        records = read_journal(path)
        if any(r["type"] == "run_end" for r in records):
            return "run ended cleanly"
        if not is_same_process(runner_pid, runner_start):
            revert_all(run_dir, registry, "runner process died")
            if not pending_faults(read_journal(path)):
                # nothing left to undo: the run is over, so `resildrill runs` stops listing it
                unregister_run(run_dir.name)
            return "runner died: faults reverted"
        if heartbeat_age(run_dir) > stale_after:
            revert_all(run_dir, registry, f"runner heartbeat stale (> {stale_after:g}s)")
            return "runner stuck: faults reverted"
        now = time.monotonic()
        expired = [
            p
            for p in pending_faults(records)
            if isinstance(p.recipe.get("_expires_at"), float | int)
            and now > float(p.recipe["_expires_at"])
        ]
        if expired:
            fence(run_dir, f"fault lifetime exceeded: {', '.join(p.fault_id for p in expired)}")
            with Journal(path) as journal:
                journal.append("fenced", by="watchdog", reason="max_fault_lifetime")
                revert_all_pending(list(reversed(expired)), registry, journal)
        time.sleep(POLL_S)
    revert_all(run_dir, registry, "watchdog lifetime exceeded")
    return "watchdog lifetime exceeded: faults reverted"


def start_watchdog(
    run_dir: Path, *, stale_after: float = 3.0, wait: bool = True
) -> subprocess.Popen[bytes]:
    """Spawn the watchdog for the calling runner; with ``wait``, return once it is watching."""
    me = os.getpid()
    start = proc_start_time(me)
    log = (run_dir / "watchdog.log").open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resildrill.runner.watchdog",
            "--run-dir",
            str(run_dir),
            "--runner-pid",
            str(me),
            "--runner-start",
            str(start),
            "--stale-after",
            str(stale_after),
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    if wait:
        wait_watching(run_dir, proc)
    return proc


def wait_watching(run_dir: Path, proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> bool:
    """Wait (bounded) until the watchdog has started watching; False if it did not."""
    deadline = time.monotonic() + timeout_s
    while not (run_dir / "watchdog.pid").exists() and time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return (run_dir / "watchdog.pid").exists()


class ProcessWatchdog:
    """The runner's handle on its watchdog process."""

    def __init__(self, run_dir: Path, proc: subprocess.Popen[bytes]) -> None:
        self.run_dir = run_dir
        self.proc = proc

    @classmethod
    def start(cls, run_dir: Path, stale_after_s: float) -> ProcessWatchdog:
        """Spawn it without waiting: it starts up while the baseline runs."""
        return cls(run_dir, start_watchdog(run_dir, stale_after=stale_after_s, wait=False))

    def watching(self) -> bool:
        """Wait (bounded) until it watches; False if it did not start."""
        return wait_watching(self.run_dir, self.proc)

    def finish(self) -> None:
        """After ``run_end``: it exits by itself; reap it (killed if it does not)."""
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--runner-pid", required=True, type=int)
    parser.add_argument("--runner-start", required=True, type=int)
    parser.add_argument("--stale-after", type=float, default=3.0)
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    outcome = watch(args.run_dir, args.runner_pid, args.runner_start, args.stale_after)
    print(f"watchdog: {outcome}", flush=True)


if __name__ == "__main__":
    main()
