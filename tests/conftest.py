"""Shared fixtures: environment restored after each test, free ports, managed processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Keep every run's state, history and registry out of the user's home, even in
    module-scoped fixtures that start before the per-test fixture."""
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="resildrill-tests-"))
    config.stash[_TMP_BASE] = base
    os.environ.setdefault("RESILDRILL_STATE_DIR", str(base / "state"))
    os.environ.setdefault("RESILDRILL_HISTORY", str(base / "history.sqlite"))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's temporary state folder."""
    import shutil

    base = config.stash.get(_TMP_BASE, None)
    if base is not None:
        shutil.rmtree(base, ignore_errors=True)


_TMP_BASE = pytest.StashKey[Path]()
SUPPORT = ROOT / "tests" / "support"


@pytest.fixture(autouse=True)
def _restore_env_and_signals(tmp_path: Path) -> Iterator[None]:
    """Restore os.environ and signal handlers; keep run registries out of the user's home."""
    saved_env = dict(os.environ)
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    os.environ["RESILDRILL_STATE_DIR"] = str(tmp_path / "state")
    os.environ["RESILDRILL_HISTORY"] = str(tmp_path / "history.sqlite")
    yield
    _stop_embedded_proxies(tmp_path)
    os.environ.clear()
    os.environ.update(saved_env)
    for s, h in saved.items():
        signal.signal(s, h)


def _stop_embedded_proxies(tmp_path: Path) -> None:
    """A run leaves the target's embedded proxy running (it carries the target's hops);
    stop, by pid and start time, every one whose pidfile a test left under its tmp_path
    (target homes there, and the per-test state folder's)."""
    from resildrill.faults.embedded_proxy import PIDFILE, stop_embedded_proxy

    for pidfile in tmp_path.rglob(PIDFILE):
        stop_embedded_proxy(pidfile.parent)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, path: str = "/healthz", timeout: float = 10.0) -> None:
    """Wait until 127.0.0.1:port answers HTTP 200 on ``path``."""
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"127.0.0.1:{port}{path} not up after {timeout}s")


class ManagedProcesses:
    """Starts processes in their own session and kills their whole groups at teardown."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, cwd: Path | None = None) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(p)
        return p

    def stop_all(self) -> None:
        for p in self.procs:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)


@pytest.fixture
def procs() -> Iterator[ManagedProcesses]:
    """Processes started by a test, killed (whole session) when it ends."""
    m = ManagedProcesses()
    yield m
    m.stop_all()
