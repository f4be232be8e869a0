"""The supervisor of the ward EHR: starts every component and restarts a dead one.

Owns the children's life cycle, like a container restart policy: a child that exits (for any
reason, SIGKILL included) is started again after ``restart_delay``; a child that keeps dying
within a second of starting waits twice as long each time (up to 30 s), so a broken component
cannot spin the CPU.

A child with a ``livez`` URL is also checked for liveness (like a Kubernetes liveness probe):
after ``liveness_failures`` consecutive failed checks (each ``liveness_interval`` apart, with
the same deadline) it is SIGKILLed and then restarted. That is what ends a freeze (SIGSTOP): a
frozen replica may hold the SQLite write lock, and without this the other replica's writes
would fail for as long as the freeze lasts. ``/livez`` never touches the database, so a
database outage does not get healthy replicas killed. Every spawn
rewrites the child's pidfile, so faults and ``target down`` always find the current process.

SIGTERM/SIGINT stop the children (their own stop signal, then SIGKILL after a grace period)
and the supervisor. If the supervisor itself is killed, the children keep running (the
clinical service stays up) and ``target down`` stops them by their pidfiles.

Run as ``python -m wardehr.supervisor --plan RUN_DIR/stack.json``; the plan is
written by :mod:`wardehr.stack`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from wardehr._proc import remove_pidfile, setup_logging, write_pidfile

__all__ = ["Child", "main"]

log = logging.getLogger("supervisor")

#: A child that dies sooner than this after starting is crash-looping: back off.
_MIN_UPTIME_S = 1.0
_MAX_DELAY_S = 30.0
_TICK_S = 0.05
_STOP_GRACE_S = 8.0


@dataclass
class Child:
    """One supervised process and its restart bookkeeping."""

    name: str
    argv: list[str]
    pidfile: str
    log: str
    user: str | None = None
    stop_signal: str = "SIGTERM"
    env: dict[str, str] = field(default_factory=dict)
    livez: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    restarts: int = 0
    quick_deaths: int = 0
    last_exit: int | None = None
    liveness_failures: int = 0
    liveness_kills: int = 0
    _log_file: IO[bytes] | None = None

    def spawn(self) -> None:
        """Start the child, logging to its file, and write its pidfile."""
        if self._log_file is None:
            self._log_file = open(self.log, "ab", buffering=0)  # noqa: SIM115 - kept open
        env = {**os.environ, **self.env}
        kwargs: dict[str, Any] = {}
        if self.user and os.geteuid() == 0:
            kwargs["user"] = self.user
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            close_fds=True,
            **kwargs,
        )
        self.started_at = time.monotonic()
        self.restart_at = None
        write_pidfile(self.pidfile, self.proc.pid)
        log.info("%s started, pid %d", self.name, self.proc.pid)

    def stop(self) -> None:
        """Ask the child to stop (waking it first if frozen)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(getattr(signal, self.stop_signal))
            self.proc.send_signal(signal.SIGCONT)
        except ProcessLookupError:
            pass


class Supervisor:
    """Keeps the children running until asked to stop."""

    def __init__(self, plan: dict[str, Any]) -> None:
        self.restart_delay = float(plan["restart_delay_s"])
        self.status_file = Path(plan["status_file"])
        self.children = [Child(**c) for c in plan["children"]]
        self.stopping = False
        self.liveness_interval = float(plan.get("liveness_interval_s", 1.0))
        self.liveness_failures = int(plan.get("liveness_failures", 3))
        # guards Popen.poll/kill between the main loop and the liveness thread, so a pid is
        # never signalled after it was reaped (and possibly reused)
        self.lock = threading.Lock()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def run(self) -> None:
        """Start everything, then watch until SIGTERM/SIGINT."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for child in self.children:
            child.spawn()
        self.write_status()
        if self.liveness_failures > 0 and any(c.livez for c in self.children):
            threading.Thread(target=self._liveness_loop, daemon=True, name="liveness").start()
        while not self.stopping:
            changed = False
            now = time.monotonic()
            with self.lock:
                for child in self.children:
                    changed |= self._tend(child, now)
            if changed:
                self.write_status()
            time.sleep(_TICK_S)
        with self.lock:
            self.shutdown()

    def _liveness_loop(self) -> None:
        while not self.stopping:
            started = time.monotonic()
            for child in self.children:
                if child.livez and not self.stopping:
                    self._check_liveness(child)
            time.sleep(max(0.0, self.liveness_interval - (time.monotonic() - started)))

    def _check_liveness(self, child: Child) -> None:
        proc = child.proc
        # a child gets a grace period to start listening
        if proc is None or time.monotonic() - child.started_at < 2 * self.liveness_interval:
            child.liveness_failures = 0
            return
        assert child.livez is not None
        try:
            with urllib.request.urlopen(child.livez, timeout=self.liveness_interval) as resp:
                live = resp.status == 200
        except (OSError, ValueError):
            live = False
        if live:
            child.liveness_failures = 0
            return
        child.liveness_failures += 1
        if child.liveness_failures < self.liveness_failures:
            return
        with self.lock:
            if child.proc is proc and proc.poll() is None and not self.stopping:
                log.warning(
                    "%s (pid %d) failed %d liveness checks (frozen?): SIGKILL",
                    child.name,
                    proc.pid,
                    child.liveness_failures,
                )
                proc.kill()
                child.liveness_kills += 1
        child.liveness_failures = 0

    def _tend(self, child: Child, now: float) -> bool:
        assert child.proc is not None
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.restarts += 1
                child.spawn()
                return True
            return False
        code = child.proc.poll()
        if code is None:
            return False
        child.last_exit = code
        uptime = now - child.started_at
        child.quick_deaths = child.quick_deaths + 1 if uptime < _MIN_UPTIME_S else 0
        delay = min(self.restart_delay * (2 ** max(0, child.quick_deaths - 1)), _MAX_DELAY_S)
        if child.quick_deaths == 0:
            delay = self.restart_delay
        child.restart_at = now + delay
        remove_pidfile(child.pidfile, child.proc.pid)
        log.warning(
            "%s (pid %d) exited with %s after %.1f s; restarting in %.1f s",
            child.name,
            child.proc.pid,
            _describe_exit(code),
            uptime,
            delay,
        )
        return True

    def shutdown(self) -> None:
        """Stop the children in reverse order of start, bounded in time."""
        log.info("stopping")
        for child in reversed(self.children):
            child.stop()
        deadline = time.monotonic() + _STOP_GRACE_S
        for child in reversed(self.children):
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time: SIGKILL", child.name)
                child.proc.kill()
                child.proc.wait(timeout=5)
            remove_pidfile(child.pidfile, child.proc.pid)
        self.write_status()

    def write_status(self) -> None:
        """Each child's pid, restarts and last exit, for ``target status``."""
        data = {
            "supervisor_pid": os.getpid(),
            "stopping": self.stopping,
            "children": {
                c.name: {
                    "pid": c.proc.pid if c.proc and c.proc.poll() is None else None,
                    "restarts": c.restarts,
                    "liveness_kills": c.liveness_kills,
                    "last_exit": c.last_exit,
                    "restart_pending": c.restart_at is not None,
                }
                for c in self.children
            },
        }
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.status_file)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def main(argv: list[str] | None = None) -> None:
    """Command line of the supervisor process."""
    parser = argparse.ArgumentParser(prog="python -m wardehr.supervisor")
    parser.add_argument("--plan", required=True, help="stack.json written by target up")
    args = parser.parse_args(argv)
    setup_logging("supervisor")
    plan = json.loads(Path(args.plan).read_text())
    write_pidfile(plan["pidfile"])
    try:
        Supervisor(plan).run()
    finally:
        remove_pidfile(plan["pidfile"])
        log.info("stopped")


if __name__ == "__main__":
    main()
