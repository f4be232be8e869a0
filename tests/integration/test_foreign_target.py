"""A system we did not write (tests/support/itemserver.py) as a first-class target: started,
checked and stopped by `resildrill target up|status|down` from the commands its target
file declares, with their output in the target's home; then a kill drill against it whose
restart command's output is logged in the run folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from tests.conftest import ROOT, free_port
from tests.support.tiny import resildrill

from resildrill.faults.process import is_same_process

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
SERVER = ROOT / "tests" / "support" / "itemserver.py"


def write_target(folder: Path, port: int) -> Path:
    start = [sys.executable, str(SERVER), "--port", str(port)]
    doc = {
        "apiVersion": "resildrill/v1",
        "kind": "Target",
        "name": "pathlab",
        "environment": "staging",
        "run_dir": "home",
        "identity": {
            "url": f"http://127.0.0.1:{port}/healthz",
            "json_field": "status",
            "value": "up",
        },
        "services": {
            "lis": {
                "address": f"127.0.0.1:{port}",
                "process": {"match": " ".join(start)},
                "recovery": "restart",
                "restart": {"command": list(start), "delay": "500ms"},
            }
        },
        "probes": [
            {
                "name": "lis",
                "role": "clinical",
                "service": "lis",
                "interval": "100ms",
                "timeout": "300ms",
                "http": {"url": f"http://127.0.0.1:{port}/healthz"},
            }
        ],
        "stack": {"kind": "commands", "start": start, "ready_timeout": "10s"},
    }
    path = folder / "target.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_up_status_down_and_a_kill_drill(tmp_path: Path) -> None:
    port = free_port()
    target = write_target(tmp_path, port)
    home = tmp_path / "home"
    try:
        up = resildrill("target", "up", str(target))
        assert up.returncode == 0, up.stdout + up.stderr
        info = json.loads((home / "stack.pid").read_text())
        assert is_same_process(info["pid"], info["start_time"])
        again = resildrill("target", "up", str(target))
        assert "already running" in again.stdout, again.stdout
        status = resildrill("target", "status", str(target))
        assert status.returncode == 0 and " ok " in status.stdout, status.stdout
        drill = tmp_path / "kill.yaml"
        drill.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "resildrill/v1",
                    "kind": "Drill",
                    "name": "lis-kill",
                    "target": "target.yaml",
                    "slos": [{"probe": "lis", "expect": "success_rate >= 0.99"}],
                    "slo_window": "500ms",
                    "stability_window": "1s",
                    "phases": {"baseline": "1s", "recovery": "3s"},
                    "faults": [
                        {
                            "id": "lis-killed",
                            "kind": "process",
                            "service": "lis",
                            "action": "kill",
                            "at": "0s",
                        }
                    ],
                }
            )
        )
        run = resildrill("run", str(drill), "--out", str(tmp_path / "reports"), "--no-history")
        assert run.returncode == 0, run.stdout + run.stderr
        run_dir = Path(run.stdout.strip().splitlines()[-1])
        assert (run_dir / "restart-lis.log").exists()
        report = json.loads((run_dir / "report.json").read_text())
        assert report["faults"][0]["recovery"]["recovered"] is True
    finally:
        # the drill's restart started a new server: down finds it by the service's command
        down = resildrill("target", "down", str(target))
    assert down.returncode == 0, down.stdout + down.stderr
    assert "lis pid" in down.stdout, down.stdout
    assert (home / "stack.log").exists()
    after = resildrill("target", "status", str(target))
    assert "FAIL" in after.stdout, after.stdout
