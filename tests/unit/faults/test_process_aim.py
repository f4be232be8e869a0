"""Aiming a signal at a system call (process fault ``during``), against real processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from resildrill.faults.process import aim

WRITER = """
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
block = b"x" * 65536
n = 0
while True:
    os.pwrite(fd, block, (n % 64) * 65536)
    os.fsync(fd)
    n += 1
"""


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[int]:
    """A process that writes and flushes a file for ever (a database committing)."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "data")])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_catches_a_thread_inside_fsync(writer: int) -> None:
    result = aim([writer], ["fsync"], within_s=20.0)
    assert result["caught"] is not None, result
    assert result["caught"].split()[0] in ("fsync", "fdatasync"), result
    assert result["caught"].endswith(f"({writer}/{writer})")


def test_a_process_that_never_writes_is_signalled_after_the_wait(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        result = aim([sleeper.pid], ["pwrite", "fsync"], within_s=0.3)
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)
    assert result["caught"] is None and result["after_s"] >= 0.3
    assert result["why"] == "no such thread state in time"
