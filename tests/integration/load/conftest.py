"""Fixtures for load integration tests: the FHIR stub as a process, stopped by pid."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

STUB = Path(__file__).with_name("fhir_stub.py")


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def remote_worker(
    locustfiles: str,
    port: int,
    host: str,
    env: dict[str, str] | None = None,
    *,
    drop: tuple[str, ...] = ("RESILDRILL_",),
    log: IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """A worker started as on another load host: ``locust --worker --master-host``, without
    the variables named by ``drop`` (the driver's ``RESILDRILL_*``), plus ``env``; output to
    ``log`` (else discarded). The caller stops it with its process group."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    out = log if log is not None else subprocess.DEVNULL
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            locustfiles,
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            str(port),
            "--host",
            host,
            "--loglevel",
            "WARNING",
        ],
        env={**clean, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
        start_new_session=True,
    )


@pytest.fixture
def fhir_stub() -> Iterator[Callable[..., str]]:
    """Start FHIR stubs (``fhir_stub(drop_every=20, extra=("--token", "t"))``); return URLs."""
    procs: list[subprocess.Popen[str]] = []

    def start(drop_every: int = 0, extra: tuple[str, ...] = ()) -> str:
        proc = subprocess.Popen(
            [sys.executable, str(STUB), "--drop-every", str(drop_every), *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY"), line
        scheme = "https" if "--tls" in extra else "http"
        return f"{scheme}://127.0.0.1:{line.split()[1]}"

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=5)
        if proc.stdin:
            proc.stdin.close()
        if proc.stdout:
            proc.stdout.close()
    assert not [p.pid for p in procs if alive(p.pid)]
