"""The runner's side of a host's guard: one channel, requests by id, heartbeats, clock offset.

A :class:`GuardSession` starts the guard over its host's SSH connection (after checking its
hash), then keeps a thread reading answers and another beating every
``heartbeat_timeout / 5``. Answers are matched to requests by ``id``, never by order. Each
exchange measures the offset of the host's monotonic clock from ours; the one with the
shortest round trip is kept, so a time the guard reports (when it sent a signal) is placed on
the runner's clock with an uncertainty of half that round trip.

:data:`SESSIONS` holds the open sessions of this process by host name: the process and
resource backends share them, and ``teardown_run`` says ``bye`` to each.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resildrill.drill.model import HostSpec
from resildrill.errors import ToolFailed
from resildrill.remote.ssh import HostLink

__all__ = ["SESSIONS", "ClockOffset", "GuardSession", "SessionPool"]


#: How fast two monotonic clocks may drift apart (NTP slews at most 500 ppm; 50 ppm is a
#: generous bound for two healthy hosts): an old offset is less certain than when measured.
DRIFT_BOUND = 50e-6


@dataclass
class ClockOffset:
    """host monotonic - runner monotonic, from the exchange with the shortest round trip,
    its uncertainty growing with the measurement's age by :data:`DRIFT_BOUND`."""

    offset_s: float = 0.0
    measured_uncertainty_s: float = float("inf")
    measured_at: float = 0.0

    @property
    def uncertainty_s(self) -> float:
        age = max(0.0, time.monotonic() - self.measured_at)
        return self.measured_uncertainty_s + age * DRIFT_BOUND

    def observe(self, sent: float, host_mono: float, received: float) -> None:
        half = (received - sent) / 2
        if half <= self.uncertainty_s:
            self.offset_s, self.measured_uncertainty_s = host_mono - (sent + half), half
            self.measured_at = received

    def to_runner(self, host_mono: float) -> float:
        return host_mono - self.offset_s


@dataclass
class _Waiter:
    event: threading.Event = field(default_factory=threading.Event)
    sent: float = 0.0
    deadline: float = 0.0
    answer: dict[str, Any] | None = None


class GuardLost(ToolFailed):
    """The guard's channel ended or went quiet: the host's guard reverts by itself."""


class GuardSession:
    """A live guard on one host and the channel to it."""

    def __init__(self, link: HostLink, run_id: str) -> None:
        self.link, self.run_id = link, run_id
        self.spec: HostSpec = link.spec
        self.clock = ClockOffset()
        self._ids = itertools.count(1)
        self._waiting: dict[int, _Waiter] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self.last_heard = time.monotonic()
        self.lost_reason: str | None = None
        self.closed = False
        self.channel: Any = None
        self.guard_pid: int | None = None

    @property
    def host(self) -> str:
        return self.link.name

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> GuardSession:
        path = self.link.install_guard()
        timeout = f"{self.spec.heartbeat_timeout:g}"
        argv = [self.spec.python, path, "serve", "--state", self.spec.state_dir,
                "--run", self.run_id, "--heartbeat-timeout", timeout]  # fmt: skip
        self.channel = self.link.open_channel(argv, privileged=True)
        threading.Thread(target=self._read, name=f"guard-{self.host}", daemon=True).start()
        hello = self.call("hello")
        self.guard_pid = int(hello["pid"])
        # a few exchanges to settle the clock offset on a quiet link
        for _ in range(3):
            self.call("beat")
        threading.Thread(target=self._beat, name=f"beat-{self.host}", daemon=True).start()
        return self

    def _read(self) -> None:
        buf = b""
        try:
            while True:
                chunk = self.channel.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self._on_answer(json.loads(line))
        except (OSError, EOFError, ValueError) as exc:
            self._lose(f"channel error: {exc}")
        self._lose("the guard's channel closed")

    def _on_answer(self, answer: dict[str, Any]) -> None:
        now = time.monotonic()
        self.last_heard = now
        with self._lock:
            waiter = self._waiting.pop(int(answer.get("id") or 0), None)
        if waiter is None:
            return
        if answer.get("ok") and "mono" in answer:
            self.clock.observe(waiter.sent, float(answer["mono"]), now)
        waiter.answer = answer
        waiter.event.set()

    def _lose(self, reason: str) -> None:
        with self._lock:
            if self.lost_reason is None and not self.closed:
                self.lost_reason = reason
            waiting = list(self._waiting.values())
            self._waiting.clear()
        for w in waiting:
            w.event.set()

    def _beat(self) -> None:
        every = self.spec.heartbeat_timeout / 5
        while not self._stop.wait(every):
            if self.lost_reason is not None:
                return
            if self._too_quiet():
                self._lose(
                    f"no answer from the guard for {self.spec.heartbeat_timeout:g} s "
                    "(it reverts by itself)"
                )
                return
            with contextlib.suppress(ToolFailed):
                self.send("beat")

    def _too_quiet(self) -> bool:
        """Silent past the heartbeat timeout, and not because a slow request (a large memory
        hog, a disk fill) is still within its own deadline: the guard answers one at a time."""
        now = time.monotonic()
        if now - self.last_heard <= self.spec.heartbeat_timeout:
            return False
        with self._lock:
            busy = any(w.deadline > now for w in self._waiting.values())
        return not busy

    def lost(self) -> str | None:
        """Why contact with the guard is lost (it then reverts by itself), or None."""
        if self.lost_reason is None and not self.closed and self._too_quiet():
            self._lose(f"no answer from the guard for {self.spec.heartbeat_timeout:g} s")
        return self.lost_reason

    # -- requests -------------------------------------------------------------------------

    def send(self, op: str, timeout_s: float | None = None, **fields: Any) -> _Waiter:
        rid = next(self._ids)
        now = time.monotonic()
        limit = timeout_s if timeout_s is not None else self.spec.heartbeat_timeout
        waiter = _Waiter(sent=now, deadline=now + limit)
        with self._lock:  # checked and registered together: a loss cannot slip in between
            if self.lost_reason is not None:
                raise GuardLost(f"host {self.host!r}: {self.lost_reason}")
            self._waiting[rid] = waiter
        data = (json.dumps({"id": rid, "op": op, **fields}) + "\n").encode()
        try:
            with self._send_lock:
                self.channel.sendall(data)
        except (OSError, EOFError) as exc:
            self._lose(f"cannot send to the guard: {exc}")
            raise GuardLost(f"host {self.host!r}: {self.lost_reason}") from None
        return waiter

    def call(self, op: str, timeout_s: float | None = None, **fields: Any) -> dict[str, Any]:
        """One request and its answer; GuardLost when the guard cannot answer in time."""
        waiter = self.send(op, timeout_s, **fields)
        limit = timeout_s if timeout_s is not None else self.spec.heartbeat_timeout
        waiter.event.wait(limit)
        answer = waiter.answer
        if answer is None:
            if self.lost_reason is None:
                self._lose(f"no answer to {op!r} in {limit:g} s")
            raise GuardLost(f"host {self.host!r}: {self.lost_reason}")
        if not answer.get("ok"):
            raise ToolFailed(f"host {self.host!r}: the guard could not {op}: {answer.get('error')}")
        return answer

    def close(self) -> list[str]:
        """Hand off cleanly: the guard reverts anything left, then ends. Returns leftovers."""
        leftovers: list[str] = []
        if self.closed:
            return leftovers
        if self.lost_reason is None:
            with contextlib.suppress(ToolFailed):
                leftovers = list(self.call("bye").get("reverted", []))
        self.closed = True
        self._stop.set()
        with contextlib.suppress(Exception):
            self.channel.close()
        return leftovers


class SessionPool:
    """The guard sessions of this process, by host name (one per host and run)."""

    def __init__(self) -> None:
        self._sessions: dict[str, GuardSession] = {}
        self._links: dict[str, HostLink] = {}
        self._lock = threading.Lock()
        self._starting: dict[str, threading.Lock] = {}  # one guard start per host at a time

    def link(self, name: str, spec: HostSpec, base_dir: Path) -> HostLink:
        with self._lock:
            link = self._links.get(name)
            if link is None or link.spec != spec:
                link = self._links[name] = HostLink(name, spec, base_dir)
        return link.connect()

    def session(self, name: str, spec: HostSpec, base_dir: Path, run_id: str) -> GuardSession:
        with self._lock:
            starting = self._starting.setdefault(name, threading.Lock())
        with starting:  # two parallel injections on one host start one guard, not two
            with self._lock:
                current = self._sessions.get(name)
            if current is not None and current.run_id == run_id and not current.closed:
                if current.lost() is not None:
                    raise GuardLost(f"host {name!r}: {current.lost_reason}")
                return current
            session = GuardSession(self.link(name, spec, base_dir), run_id).start()
            with self._lock:
                self._sessions[name] = session
            return session

    def forget_link(self, name: str) -> None:
        """Drop a host's connection (after lost contact), so the next use reconnects."""
        with self._lock:
            link = self._links.pop(name, None)
        if link is not None:
            link.close()

    def existing(self, name: str, run_id: str) -> GuardSession | None:
        with self._lock:
            s = self._sessions.get(name)
        return s if s is not None and s.run_id == run_id and not s.closed else None

    def lost_for(self, run_id: str) -> list[tuple[str, str]]:
        """Hosts whose guard of this run can no longer be reached, and why."""
        with self._lock:
            sessions = [s for s in self._sessions.values() if s.run_id == run_id]
        return [(s.host, why) for s in sessions if not s.closed and (why := s.lost())]

    def close_run(self, run_id: str) -> dict[str, list[str]]:
        with self._lock:
            mine = [s for s in self._sessions.values() if s.run_id == run_id]
        return {s.host: s.close() for s in mine}

    def close_all(self) -> None:
        with self._lock:
            sessions, links = list(self._sessions.values()), list(self._links.values())
            self._sessions.clear()
            self._links.clear()
        for s in sessions:
            s.close()
        for link in links:
            link.close()


SESSIONS = SessionPool()
