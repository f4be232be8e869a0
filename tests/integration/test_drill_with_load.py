"""End to end: a drill with clinician load (real Locust processes) on the bundled ward EHR.

The gateway is SIGKILLed; the report must show failed requests per workflow during the
outage and none before it, at least 50 baseline requests per workflow, and no lost write.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.support.tiny import load_report, resildrill

from resildrill.wardehr import stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture
def ward(tmp_path: Path) -> Iterator[Path]:
    """The ward EHR on free ports, stopped at the end."""
    target = stack.write_target(tmp_path, restart_delay="1500ms")
    stack.up(target)
    try:
        yield target
    finally:
        stack.down(target)


def test_gateway_loss_with_clinicians(ward: Path, tmp_path: Path) -> None:
    """Failures per workflow appear during the outage only; no acknowledged write is lost."""
    drill = tmp_path / "drill.yaml"
    drill.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "resildrill/v1",
                "kind": "Drill",
                "name": "gateway-loss-load",
                "target": str(ward),
                "slos": [{"probe": "gateway", "expect": "success_rate >= 0.99"}],
                "slo_window": "1s",
                "stability_window": "2s",
                "phases": {"baseline": "8s", "recovery": "5s"},
                # Equal weights so every persona gets its 50 baseline requests in a short drill.
                "load": {
                    "users": 30,
                    "pace": 60,
                    "workflows": dict.fromkeys(
                        [
                            "obs_round",
                            "drug_round",
                            "doctor",
                            "pharmacist",
                            "ed_triage",
                            "bed_manager",
                        ],
                        1.0,
                    ),
                },
                "faults": [
                    {
                        "id": "gw",
                        "kind": "process",
                        "service": "gateway",
                        "action": "kill",
                        "at": "0s",
                    }
                ],
            }
        )
    )
    result = resildrill("run", str(drill), "--out", str(tmp_path / "reports"), timeout=150)
    assert result.returncode == 0, result.stderr
    report = load_report(Path(result.stdout.strip().splitlines()[-1]))
    series = report["timeline"]["series"]
    fault = report["faults"][0]
    base_end = int(report["baseline_end_s"] / 0.1)
    start = int(fault["inject_requested_at_s"] / 0.1)
    end = int(fault["recovered_at_s"] / 0.1)
    workflows = sorted(report["load"]["by_workflow"])
    assert len(workflows) >= 5
    failed_during = 0
    for wf in workflows:
        req = series[f"workflow.{wf}.requests"]["values"]
        fail = series[f"workflow.{wf}.failures"]["values"]
        assert sum(fail[:start]) == 0, f"{wf} failed before the fault"
        baseline_requests = sum(req[:base_end])
        assert baseline_requests >= 50, (wf, baseline_requests)
        failed_during += sum(fail[start : end + 5])
    assert failed_during > 0
    integrity = report["integrity"]
    assert integrity["writes_acknowledged"] > 0
    assert integrity["writes_lost"] == 0 and integrity["writes_duplicated"] == 0
