"""A runner SIGKILLed with a container fault in place; ``resildrill rollback`` restores it.

The runner dies right after injecting (``RESILDRILL_CRASH_AT=injected``), so only the
journal's intent record knows what was done. ``docker inspect`` checks the fault was really
in place after the crash and really gone after the rollback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from docker_support import SESSION, Containers, inspect, wait_for
from tests.conftest import free_port, wait_http
from tests.support.tiny import resildrill

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def server(port: int) -> list[str]:
    """An HTTP server on 127.0.0.1:port that exits at once on SIGTERM."""
    return [
        "/usr/bin/python3",
        "-c",
        "import http.server as h, signal, sys\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
        f"h.ThreadingHTTPServer(('127.0.0.1', {port}), h.SimpleHTTPRequestHandler)"
        ".serve_forever()",
    ]


def write_files(folder: Path, port: int, fault: dict[str, Any]) -> Path:
    """A target probing the container's HTTP server and a drill with one long fault."""
    target = {
        "apiVersion": "resildrill/v1",
        "kind": "Target",
        "name": "docker-web",
        "environment": "test",
        "probes": [
            {
                "name": "web",
                "role": "clinical",
                "http": {"url": f"http://127.0.0.1:{port}/"},
                "interval": "100ms",
                "timeout": "500ms",
            }
        ],
    }
    drill = {
        "apiVersion": "resildrill/v1",
        "kind": "Drill",
        "name": "docker-crash",
        "target": "target.yaml",
        "slos": [{"probe": "web", "expect": "success_rate >= 0.5"}],
        "stability_window": "1s",
        "phases": {"baseline": "1s", "recovery": "1s"},
        "faults": [{"id": "f", "kind": "docker", "at": "0s", "duration": "30s", **fault}],
    }
    (folder / "target.yaml").write_text(yaml.safe_dump(target))
    path = folder / "drill.yaml"
    path.write_text(yaml.safe_dump(drill))
    return path


CASES = {
    "pause": ({"action": "pause"}, lambda a: a["State"]["Paused"]),
    "throttle": ({"action": "throttle", "cpus": 0.1}, lambda a: a["HostConfig"]["CpuQuota"] > 0),
    "stop": ({"action": "stop", "stop_timeout": "2s"}, lambda a: not a["State"]["Running"]),
    # A crashed container with no restart policy stays down until the rollback starts it.
    "crash": ({"action": "crash", "recovery": "drill"}, lambda a: not a["State"]["Running"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rollback_after_sigkilled_runner_restores_the_container(
    case: str, tmp_path: Path, containers: Containers
) -> None:
    """The fault survives the killed runner; rollback from the journal alone undoes it."""
    port = free_port()
    cid = containers.run(f"rb-{case}", command=server(port), labels={"rdt-rb": SESSION + case})
    wait_http(port, "/", timeout=15)
    fault, injected = CASES[case]
    drill = write_files(tmp_path, port, {**fault, "select": {"labels": {"rdt-rb": SESSION + case}}})
    run = resildrill(
        "run",
        str(drill),
        "--out",
        str(tmp_path / "reports"),
        # The watchdog is off: this tests the manual rollback after losing the host.
        env={"RESILDRILL_CRASH_AT": "injected", "RESILDRILL_TEST_WATCHDOG": "off"},
    )
    assert run.returncode == -9, run.stderr  # the runner died by SIGKILL
    assert injected(inspect(cid)), f"{case} should still be in place after the crash"
    journal = next((tmp_path / "reports").glob("*/journal.jsonl"))
    rolled = resildrill("rollback", str(journal))
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    attrs = inspect(cid)
    assert attrs["State"]["Running"] and not attrs["State"]["Paused"]
    assert attrs["HostConfig"]["CpuQuota"] <= 0 and attrs["HostConfig"]["NanoCpus"] == 0
    assert wait_for(lambda: _answers(port), 10)
    again = resildrill("rollback", str(journal))
    assert again.returncode == 0 and "nothing to do" in again.stdout.lower()


def _answers(port: int) -> bool:
    try:
        wait_http(port, "/", timeout=0.5)
    except TimeoutError:
        return False
    return True
