"""A drill against the containerised ward EHR: a crashed gateway is restarted by its policy.

``resildrill target up|down`` runs the stack as containers; the drill crashes the gateway
(selected by its compose labels) and leaves its return to Docker. ``docker inspect`` confirms
the engine restarted it; the report carries the recovery time.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from docker_support import SESSION, inspect
from tests.conftest import free_port
from tests.support.tiny import resildrill

from wardehr.docker_stack import write_target

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


@pytest.fixture
def ward(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """The ward EHR as containers on free ports, brought up and down through the CLI."""
    project = f"rdt-ward-{SESSION}"
    ports = {k: free_port() for k in ("gateway", "replica-a", "replica-b")}
    target = write_target(tmp_path, ports=ports, name=project, project=project)
    up = resildrill("target", "up", str(target), "--timeout", "60")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield target, project
    finally:
        down = resildrill("target", "down", str(target))
        assert down.returncode == 0, down.stderr
        left = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=org.resildrill.target={project}"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert left.stdout.strip() == "", "target down left containers behind"


def test_crashed_gateway_is_restarted_by_its_restart_policy(
    ward: tuple[Path, str], tmp_path: Path
) -> None:
    """Crash the gateway; the restart policy brings it back; the report has the recovery time."""
    target, project = ward
    status = resildrill("target", "status", str(target))
    assert status.returncode == 0 and status.stdout.count(" ok ") == 3, status.stdout
    gateway = f"{project}-gateway"
    before = inspect(gateway)
    assert before["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert before["HostConfig"]["NetworkMode"] == "host"
    # the run below checks this identity against the containers' /metadata before injecting
    assert yaml.safe_load(target.read_text())["identity"]["fhir_software"]
    drill = {
        "apiVersion": "resildrill/v1",
        "kind": "Drill",
        "name": "docker-gateway-crash",
        "target": "target.yaml",
        "slos": [{"probe": "gateway", "expect": "success_rate >= 0.99"}],
        "slo_window": "500ms",
        "stability_window": "2s",
        "phases": {"baseline": "2s", "recovery": "8s"},
        "faults": [
            {
                "id": "gateway-crash",
                "kind": "docker",
                "action": "crash",
                "select": {"compose": {"project": project, "service": "gateway"}},
                "recovery": "orchestrator",
                "at": "0s",
            }
        ],
    }
    path = tmp_path / "drill.yaml"
    path.write_text(yaml.safe_dump(drill))
    run = resildrill("run", str(path), "--out", str(tmp_path / "reports"), timeout=90)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(next((tmp_path / "reports").glob("*/report.json")).read_text())
    fault = report["faults"][0]
    after = inspect(gateway)
    # Independent: the engine restarted the same container (a new process, one more restart).
    assert after["Id"] == before["Id"] and after["RestartCount"] == before["RestartCount"] + 1
    assert after["State"]["Pid"] != before["State"]["Pid"] and after["State"]["Running"]
    recovery = fault["recovery"]
    assert fault["counted_from"] == "inject" and fault["reverted_at_s"] is None
    assert recovery["recovered"] is True and recovery["time_to_detect_s"] is not None
    assert 0 < recovery["time_to_recover_s"] < 8
    restarted = [a for a in fault["actions"] if a["action"] == "container_restarted"]
    assert restarted and restarted[0]["container"] == gateway
    assert "restarted by its restart policy" in fault["revert"]
    print(
        f"\ngateway crash: container running again after {restarted[0]['started_after_s']} s "
        f"(engine), clinical probe recovered after {recovery['time_to_recover_s']} s, "
        f"outage {recovery['outage_s']} s"
    )
