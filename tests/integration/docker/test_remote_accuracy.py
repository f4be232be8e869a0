"""A remote kill measured against an independent 10 ms prober: resildrill's outage and time to
recover for a service killed on its SSH host (restarted by the host's supervisor) agree with
the truth within 150 ms, as issue 2 required of local faults. The prober runs on this machine
and probes the replica directly; both share the kernel's monotonic clock. Errors go to
test-artifacts/accuracy-remote.json.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from remote_support import Estate, down_estate, drill_doc, up_estate, write_yaml
from tests.conftest import ROOT, SUPPORT
from tests.integration.test_accuracy import truth_for
from tests.support.tiny import resildrill

pytestmark = pytest.mark.timeout(240)
TOLERANCE_S = 0.150
TRIALS = 3


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    made = up_estate(tmp_path_factory.mktemp("acc"), f"ra-{uuid.uuid4().hex[:6]}")
    # the replica is what clinicians lose here: its probe is the clinical one, as the prober's
    doc = yaml.safe_load(made.target.read_text())
    for probe in doc["probes"]:
        probe["role"] = "clinical" if probe["name"] == "replica-a" else "component"
        probe["timeout"] = "500ms"
        if probe["name"] == "replica-a":
            probe["interval"] = "50ms"  # the report's resolution is 100 ms either way
    made.target.write_text(yaml.safe_dump(doc, sort_keys=False))
    yield made
    down_estate(made)


def test_remote_kill_matches_independent_truth(estate: Estate, tmp_path: Path) -> None:
    faults = [
        {
            "id": f"kill-{i}",
            "kind": "process",
            "service": "replica-a",
            "action": "kill",
            "at": f"{i * 4}s",
        }
        for i in range(TRIALS)
    ]
    doc = drill_doc("remote-accuracy", faults, phases={"baseline": "1s", "recovery": "3s"})
    doc["slos"] = [{"probe": "replica-a", "expect": "success_rate >= 0.99"}]
    doc["gates"] = {"all_faults_recovered": True}
    drill = write_yaml(estate.folder / "accuracy.yaml", doc)
    truth = tmp_path / "truth.txt"
    prober = subprocess.Popen(
        [
            sys.executable,
            str(SUPPORT / "truthprober.py"),
            "--port",
            str(estate.ports["replica-a"]),
            "--timeout",
            "0.5",
            "--duration",
            "120",
            "--out",
            str(truth),
        ]
    )
    try:
        run = resildrill(
            "run", str(drill), "--out", str(tmp_path / "r"), "--no-history", timeout=120
        )
    finally:
        prober.send_signal(signal.SIGTERM)
        prober.wait(timeout=30)
    assert run.returncode == 0, run.stderr
    report = json.loads(next((tmp_path / "r").glob("*/report.json")).read_text())
    t0 = report["clock"]["monotonic_t0"]
    samples = [
        (float(a) - t0, int(b)) for a, b, _w in (x.split() for x in truth.read_text().splitlines())
    ]
    errors = []
    for i, f in enumerate(report["faults"]):
        start = f["inject_requested_at_s"] - 0.05
        nxt = report["faults"][i + 1]["inject_requested_at_s"] if i + 1 < TRIALS else None
        end = nxt if nxt is not None else report["duration_s"]
        true_outage, true_ttr = truth_for(samples, start, end, f["injected_at_s"])
        rec = f["recovery"]
        errors.append(
            {
                "fault": f["id"],
                "outage_s": rec["outage_s"],
                "true_outage_s": round(true_outage, 3),
                "time_to_recover_s": rec["time_to_recover_s"],
                "true_time_to_recover_s": round(true_ttr, 3),
                "outage_error_s": round(rec["outage_s"] - true_outage, 3),
                "ttr_error_s": round(rec["time_to_recover_s"] - true_ttr, 3),
                "clock_uncertainty_s": f["remote"]["hosts"][0]["clock_uncertainty_s"],
            }
        )
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "accuracy-remote.json").write_text(json.dumps(errors, indent=1))
    for e in errors:
        assert e["true_outage_s"] > 0.3, e  # the kill really took the replica away
        assert abs(e["outage_error_s"]) <= TOLERANCE_S, e
        assert abs(e["ttr_error_s"]) <= TOLERANCE_S, e
