"""Helpers to run the ward EHR in tests, benchmarks and demos, and to talk to it.

Owns the test-side plumbing: a context manager that starts a stack on free ports and always
stops it, a check of whether PostgreSQL can be started here (with the reason when it
cannot), and a small keep-alive FHIR client that times every request on the monotonic clock.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from resildrill.errors import ToolFailed
from wardehr import stack
from wardehr._proc import is_same_process, parse_address, read_pidfile

__all__ = [
    "FhirClient",
    "Reply",
    "RunningStack",
    "postgres_unavailable",
    "running_stack",
    "world_readable_tempdir",
]


@dataclass(frozen=True)
class Reply:
    """One HTTP exchange: status (0 when no answer), parsed body, headers, timing."""

    status: int
    body: Any
    headers: dict[str, str]
    started: float
    elapsed: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return 200 <= self.status < 300


class FhirClient:
    """A keep-alive HTTP/1.1 client for one host:port (one per thread)."""

    def __init__(self, address: str, timeout_s: float = 10.0) -> None:
        self.host, self.port = parse_address(address)
        self.timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        """Drop the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Reply:
        """Send one request; network errors become ``status 0`` with ``error`` set."""
        payload = None if body is None else json.dumps(body).encode()
        hdrs = {"Accept": "application/fhir+json", **(headers or {})}
        if payload is not None:
            hdrs["Content-Type"] = "application/fhir+json"
        started = time.monotonic()
        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout_s
                )
            try:
                self._conn.request(method, path, body=payload, headers=hdrs)
                resp = self._conn.getresponse()
                raw = resp.read()
                elapsed = time.monotonic() - started
                parsed = json.loads(raw) if raw else None
                return Reply(resp.status, parsed, dict(resp.headers), started, elapsed)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                # a keep-alive connection the server closed while idle: a read is resent once
                # on a fresh connection; a write is not (it may have been applied)
                if attempt == 0 and method in ("GET", "HEAD"):
                    continue
                return Reply(0, None, {}, started, time.monotonic() - started, repr(exc))
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self.close()
                return Reply(0, None, {}, started, time.monotonic() - started, repr(exc))
        raise AssertionError("unreachable")

    def get(self, path: str) -> Reply:
        """GET ``path``."""
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Reply:
        """POST ``body`` as FHIR JSON."""
        return self.request("POST", path, body)

    def put(self, path: str, body: Any, if_match: str | None = None) -> Reply:
        """PUT ``body``, optionally with ``If-Match``."""
        return self.request("PUT", path, body, {"If-Match": if_match} if if_match else None)


@dataclass
class RunningStack:
    """A started stack: its target file and addresses."""

    target: Path
    status: stack.StackStatus

    def address(self, service: str) -> str:
        """The client-side address of a service."""
        for s in self.status.services:
            if s.name == service and s.address:
                return s.address
        raise KeyError(service)

    def client(self, service: str = "gateway", timeout_s: float = 10.0) -> FhirClient:
        """A client of a service (default: the gateway)."""
        return FhirClient(self.address(service), timeout_s)

    def pid(self, service: str) -> int:
        """The live pid of a service, checked against its recorded start time."""
        entry = read_pidfile(stack.pidfile_of(self.target, service))
        if entry is None or entry[1] is None or not is_same_process(entry[0], entry[1]):
            raise ToolFailed(f"{service} is not running")
        return entry[0]

    def signal(self, service: str, sig: signal.Signals) -> int:
        """Send ``sig`` to a service's current process; returns its pid."""
        pid = self.pid(service)
        os.kill(pid, sig)
        return pid

    def wait_healthy(self, timeout_s: float = 20.0) -> stack.StackStatus:
        """Wait until every service is healthy again (bounded)."""
        deadline = time.monotonic() + timeout_s
        while True:
            current = stack.status(self.target)
            if current.healthy and stack._gateway_sees_all(stack._layout(self.target)):
                return current
            if time.monotonic() > deadline:
                raise ToolFailed(f"not healthy after {timeout_s} s: {current.services}")
            time.sleep(0.1)


@contextmanager
def running_stack(
    folder: str | Path,
    *,
    store: Literal["sqlite", "postgres"] = "sqlite",
    restart_delay: str = "1s",
    timeout_s: float = 60.0,
    ports: dict[str, int] | None = None,
    via: dict[str, str] | None = None,
) -> Iterator[RunningStack]:
    """Write a target with free ports into ``folder``, start it, and always stop it.

    ``ports`` and ``via`` are passed to :func:`~wardehr.stack.write_target`.
    """
    path = stack.write_target(
        folder, store=store, restart_delay=restart_delay, ports=ports, via=via
    )
    try:
        status = stack.up(path, timeout_s=timeout_s)
        yield RunningStack(path, status)
    finally:
        stack.down(path)


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be started here, or None when it can."""
    try:
        stack._pg_bin()
    except ToolFailed as exc:
        return str(exc)
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam(stack.PG_OS_USER)
        except KeyError:
            return "running as root and there is no 'postgres' user to run PostgreSQL as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'resildrill[postgres]')"
    return None


@contextmanager
def world_readable_tempdir(prefix: str = "wardehr-") -> Iterator[Path]:
    """A temporary folder the ``postgres`` user can reach (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
