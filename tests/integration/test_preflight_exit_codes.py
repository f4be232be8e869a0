"""DESIGN's exit codes at preflight: a backend the tool cannot reach is the tool's failure
(6); a target that is not there is the target's (5). Nothing is injected either way."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.conftest import free_port
from tests.support.tiny import resildrill, write_drill, write_target

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_unreachable_docker_engine_exits_6(tmp_path: Path) -> None:
    """A Docker fault against an engine address where nothing listens: exit 6, no report."""
    write_target(tmp_path, free_port(), recovery="restart")
    closed = free_port()
    drill = write_drill(
        tmp_path,
        "no-engine",
        [
            {
                "id": "pause-api",
                "kind": "docker",
                "action": "pause",
                "select": {"name": "ward-api"},
                "docker_host": f"tcp://127.0.0.1:{closed}",
                "api_timeout": "2s",
                "at": "0s",
                "duration": "1s",
            }
        ],
    )
    result = resildrill("run", str(drill), "--out", str(tmp_path / "reports"))
    assert result.returncode == 6, result.stderr
    assert "preflight failed, nothing injected" in result.stderr
    assert f"127.0.0.1:{closed}" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "reports").exists()


def test_unreachable_external_toxiproxy_exits_6(tmp_path: Path) -> None:
    """An external Toxiproxy that does not answer: exit 6, nothing injected."""
    port = free_port()
    target = write_target(tmp_path, port, recovery="restart")
    doc = yaml.safe_load(target.read_text())
    api = free_port()
    doc["toxiproxy"] = {
        "url": f"http://127.0.0.1:{api}",
        "embedded": False,
        "proxies": {"web": {"listen": f"127.0.0.1:{free_port()}", "upstream": f"127.0.0.1:{port}"}},
    }
    target.write_text(yaml.safe_dump(doc, sort_keys=False))
    drill = write_drill(
        tmp_path,
        "no-proxy",
        [
            {
                "id": "slow",
                "kind": "network",
                "proxy": "web",
                "toxic": {"type": "latency", "attributes": {"latency": 100}},
                "at": "0s",
                "duration": "1s",
            }
        ],
    )
    result = resildrill("run", str(drill), "--out", str(tmp_path / "reports"))
    assert result.returncode == 6, result.stderr
    assert f"127.0.0.1:{api}" in result.stderr and "Traceback" not in result.stderr


def test_missing_service_process_exits_5(tmp_path: Path) -> None:
    """The target's process is not running: the target is not ready (5), not a tool failure."""
    (tmp_path / "web.pid").write_text("999999\n")
    write_target(tmp_path, free_port(), recovery="restart")
    drill = write_drill(
        tmp_path,
        "no-process",
        [{"id": "kill", "kind": "process", "service": "web", "action": "kill", "at": "0s"}],
    )
    result = resildrill("run", str(drill), "--out", str(tmp_path / "reports"))
    assert result.returncode == 5, result.stderr
    assert "expected 1 process(es), found 0" in result.stderr
