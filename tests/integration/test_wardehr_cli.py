"""``resildrill target up|status|down`` as a user runs them: real processes, exit codes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from resildrill.faults.process import proc_state
from wardehr import stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

CLI = [sys.executable, "-m", "resildrill"]


def resildrill(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess (bounded)."""
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Path]:
    """A target file on free ports; whatever the test did, its processes are stopped."""
    path = stack.write_target(tmp_path)
    try:
        yield path
    finally:
        stack.down(path)


def test_up_status_down(target: Path) -> None:
    """up waits for health and says where pidfiles and logs are; status lists pids; down is
    idempotent; the processes run in their own session (a terminal's Ctrl-C misses them)."""
    up = resildrill("target", "up", target)
    assert up.returncode == 0, up.stderr
    assert "pidfiles:" in up.stdout and "logs:" in up.stdout
    status = resildrill("target", "status", target)
    assert status.returncode == 0
    for name in ("replica-a", "replica-b", "gateway", "supervisor"):
        line = next(x for x in status.stdout.splitlines() if x.strip().startswith(name))
        assert "running" in line and " ok " in f"{line} "
    supervisor = stack.read_pid(target, "supervisor")
    assert supervisor is not None
    assert os.getsid(supervisor) != os.getsid(0)
    again = resildrill("target", "up", target)  # already up: no second stack
    assert again.returncode == 0
    assert "already running" in again.stdout
    assert stack.read_pid(target, "supervisor") == supervisor
    down = resildrill("target", "down", target)
    assert down.returncode == 0 and "stopped:" in down.stdout
    assert not stack.status(target).running
    assert resildrill("target", "down", target).stdout.strip() == "nothing was running"


def test_bad_target_is_exit_2_in_one_line(tmp_path: Path) -> None:
    """A missing or stack-less target is bad input: exit 2, one line, no traceback."""
    missing = resildrill("target", "up", tmp_path / "nope.yaml")
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr
    plain = tmp_path / "plain.yaml"
    plain.write_text(
        "apiVersion: resildrill/v1\nkind: Target\nname: plain\nenvironment: staging\n"
        "probes: [{name: web, http: {url: 'http://127.0.0.1:9/'}}]\n"
    )
    result = resildrill("target", "up", plain)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "ward-ehr" in result.stderr


def test_busy_port_is_a_tool_failure(target: Path) -> None:
    """When the gateway's port is taken, up fails with exit 6 and names the address."""
    cfg = stack._layout(target).config
    host, port = cfg.gateway.listen.split(":")
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((host, int(port)))
        squatter.listen()
        result = resildrill("target", "up", target)
    assert result.returncode == 6
    assert cfg.gateway.listen in result.stderr
    assert "Traceback" not in result.stderr
    assert not stack.status(target).running


def test_down_stops_orphans_of_a_killed_supervisor(target: Path) -> None:
    """With the supervisor SIGKILLed, its children keep serving; down still stops each of them
    by pidfile, and a later up starts a fresh stack."""
    import signal

    stack.up(target)
    pids = {name: stack.read_pid(target, name) for name in ("gateway", "replica-a", "replica-b")}
    supervisor = stack.read_pid(target, "supervisor")
    assert supervisor is not None
    os.kill(supervisor, signal.SIGKILL)
    current = stack.status(target)
    assert {s.name for s in current.services if s.state == "running"} == set(pids)
    stopped = stack.down(target)
    assert set(pids) <= set(stopped)
    for pid in pids.values():
        assert pid is not None
        assert proc_state(pid) in (None, "Z", "X")
    again = stack.up(target)
    assert again.started is True and again.healthy


def test_a_ward_ehr_that_answers_as_other_software_is_refused(target: Path, tmp_path: Path) -> None:
    """The target's identity (the gateway's CapabilityStatement software.name) does not match:
    `run` refuses with exit 2 and one line naming what answered and what was expected, before
    anything else happens: no run folder, no journal, every process the same as before."""
    import yaml

    stack.up(target)
    doc = yaml.safe_load(target.read_text())
    assert doc["identity"]["fhir_software"] == "resildrill ward EHR"
    doc["identity"]["fhir_software"] = "Another Vendor EHR"
    doc["name"] = "ward-ehr-wrong-identity"  # the runner's lock is per name: not a shared one
    wrong = target.with_name("target-wrong.yaml")  # the same stack, the same run_dir
    wrong.write_text(yaml.safe_dump(doc, sort_keys=False))
    drill = yaml.safe_load((Path(__file__).parents[2] / "drills/replica-loss.yaml").read_text())
    drill["target"] = str(wrong)
    drill_path = tmp_path / "replica-loss.yaml"
    drill_path.write_text(yaml.safe_dump(drill, sort_keys=False))
    services = ("gateway", "replica-a", "replica-b", "supervisor")
    before = {name: stack.read_pid(target, name) for name in services}
    out = tmp_path / "reports"
    result = resildrill("run", drill_path, "--yes", "--no-history", "--out", out)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "identity" in lines[0] and "nothing injected" in lines[0]
    assert "'resildrill ward EHR'" in lines[0] and "'Another Vendor EHR'" in lines[0]
    assert not list(out.rglob("journal.jsonl")) and not list(out.glob("*/"))
    assert {name: stack.read_pid(target, name) for name in services} == before
    assert stack.status(target).healthy
