"""Fixtures shared by the integration tests of the runner, rollback and safety."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import ManagedProcesses, free_port, wait_http
from tests.support.tiny import SERVICE, kill_pidfile, write_target


@pytest.fixture
def web(tmp_path: Path, procs: ManagedProcesses) -> Iterator[tuple[Path, int]]:
    """The tiny HTTP service as its own process, with a target whose recovery is the
    drill's restart command; stopped (continued first if frozen) at the end."""
    port = free_port()
    procs.start(str(SERVICE), "--port", str(port), "--pidfile", str(tmp_path / "web.pid"))
    wait_http(port)
    write_target(tmp_path, port, recovery="restart")
    yield tmp_path, port
    kill_pidfile(tmp_path / "web.pid")
