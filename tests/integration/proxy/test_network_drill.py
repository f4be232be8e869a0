"""A drill with ``kind: network`` through the real runner: injected, then removed by the
drill's end, or by ``resildrill rollback`` after the runner is killed mid-fault."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from proxy_support import EchoServer

from resildrill.drill.model import TargetSpec
from resildrill.errors import ToolFailed
from resildrill.faults.network import ensure_embedded_proxy, stop_embedded_proxy
from resildrill.faults.toxiproxy_client import ToxiproxyClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Drill:
    """A target with one proxy in front of an echo server, and a drill slowing it down."""

    def __init__(self, folder: Path, echo: EchoServer) -> None:
        self.folder = folder
        self.url = f"http://127.0.0.1:{free_port()}"
        listen = free_port()
        target = {
            "apiVersion": "resildrill/v1",
            "kind": "Target",
            "name": "net-e2e",
            "environment": "test",
            "probes": [
                {"name": "hop", "role": "clinical", "tcp": {"host": "127.0.0.1", "port": listen}}
            ],
            "toxiproxy": {
                "url": self.url,
                "proxies": {"hop": {"listen": f"127.0.0.1:{listen}", "upstream": echo.addr}},
            },
        }
        (folder / "target.yaml").write_text(yaml.safe_dump(target))
        self.target = TargetSpec.model_validate(target)
        drill = {
            "apiVersion": "resildrill/v1",
            "kind": "Drill",
            "name": "slow-hop",
            "target": "target.yaml",
            "phases": {"baseline": "1s", "recovery": "1s"},
            "stability_window": "500ms",
            "slos": [{"probe": "hop", "expect": "success_rate >= 0.5"}],
            "faults": [
                {
                    "id": "slow",
                    "kind": "network",
                    "proxy": "hop",
                    "at": "200ms",
                    "duration": "1500ms",
                    "toxic": {"type": "latency", "attributes": {"latency": 300}},
                }
            ],
        }
        self.drill = folder / "drill.yaml"
        self.drill.write_text(yaml.safe_dump(drill))
        self.client = ToxiproxyClient(self.url)

    def run(self, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
        env = None
        if crash_at:
            # The watchdog is off: this tests the manual rollback after losing the host.
            env = {**os.environ, "RESILDRILL_CRASH_AT": crash_at, "RESILDRILL_TEST_WATCHDOG": "off"}
        return subprocess.run(
            [sys.executable, "-m", "resildrill", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=self.folder,
        )

    def toxics(self) -> list[str]:
        status, body = self.client.call("GET", "/proxies/hop/toxics")
        assert status == 200
        return [t["name"] for t in body]


@pytest.fixture
def drill(tmp_path: Path, echo_server: EchoServer) -> Iterator[Drill]:
    """The drill's files; any embedded proxy server a test or run left is stopped by pid."""
    d = Drill(tmp_path, echo_server)
    yield d
    stop_embedded_proxy(tmp_path / "run")
    for run_dir in (tmp_path / "reports").glob("*"):
        stop_embedded_proxy(run_dir)


def journal_of(drill: Drill) -> list[dict[str, Any]]:
    journal = next((drill.folder / "reports").iterdir()) / "journal.jsonl"
    return [json.loads(line) for line in journal.read_text().splitlines()]


def answers(url: str) -> bool:
    try:
        ToxiproxyClient(url, 0.5).version()
        return True
    except ToolFailed:
        return False


def test_drill_injects_and_removes_its_toxic(drill: Drill) -> None:
    """With a server already running, the run reuses it, adds resildrill-<run>-slow and
    removes it at the fault's end, and leaves the server running."""
    ensure_embedded_proxy(drill.target, drill.folder / "run")
    result = drill.run("run", str(drill.drill), "--out", str(drill.folder / "reports"))
    assert result.returncode in (0, 1), result.stdout + result.stderr
    events = journal_of(drill)
    injected = [e for e in events if e["type"] == "injected"]
    assert injected and injected[0]["recipe"]["toxic"]["name"].endswith("-slow")
    assert any(e["type"] == "reverted" and "removed toxic" in e["result"] for e in events)
    assert not any(e["type"] == "child" and e.get("role") == "toxiproxy" for e in events)
    assert drill.toxics() == []


def test_runner_starts_and_stops_the_embedded_server(drill: Drill) -> None:
    """With nothing at the URL, the run starts the server (journalled as a child) and stops it."""
    assert not answers(drill.url)
    result = drill.run("run", str(drill.drill), "--out", str(drill.folder / "reports"))
    assert result.returncode in (0, 1), result.stdout + result.stderr
    events = journal_of(drill)
    assert any(e["type"] == "child" and e.get("role") == "toxiproxy" for e in events)
    assert any(e["type"] == "reverted" and "removed toxic" in e["result"] for e in events)
    assert not answers(drill.url)


def test_killed_runner_then_rollback_removes_the_toxic(drill: Drill) -> None:
    """SIGKILL right after the toxic is injected: rollback removes it; a second one has nothing."""
    ensure_embedded_proxy(drill.target, drill.folder / "run")
    result = drill.run(
        "run", str(drill.drill), "--out", str(drill.folder / "reports"), crash_at="injected"
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    run_dir = next((drill.folder / "reports").iterdir())
    first = drill.run("rollback", str(run_dir))
    assert first.returncode == 0, first.stdout + first.stderr
    assert drill.toxics() == []
    second = drill.run("rollback", str(run_dir))
    assert second.returncode == 0 and "nothing to do" in second.stdout
