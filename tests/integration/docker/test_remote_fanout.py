"""Fan-out: one fault on 20 SSH hosts at once. The guards are started before the baseline and
the injection goes to every host in parallel: the spread of the hosts' injection times (each
the guard's own act, placed on the runner's clock) stays under 1 s; every host is reverted,
judged by the inspector inside each host; the runner's peak memory is written to
test-artifacts/remote-fanout.json.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from remote_support import BareHosts, down_bare_hosts, drill_doc, up_bare_hosts, write_yaml
from tests.conftest import ROOT
from tests.support.tiny import cli_command

pytestmark = pytest.mark.timeout(300)
N_HOSTS = 20


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BareHosts]:
    made = up_bare_hosts(tmp_path_factory.mktemp("fan"), f"rf-{uuid.uuid4().hex[:6]}", N_HOSTS)
    yield made
    down_bare_hosts(made)


def test_one_fault_on_twenty_hosts(hosts: BareHosts, tmp_path: Path) -> None:
    fault = {"id": "squeeze", "kind": "resource", "hosts": hosts.names, "at": "0s",
             "duration": "2s", "memory": {"size": "16MiB"}}  # fmt: skip
    doc = drill_doc("fanout", [fault])
    doc["slos"] = [{"probe": "first-host-ssh", "expect": "success_rate >= 0.9"}]
    drill = write_yaml(hosts.folder / "fanout.yaml", doc)
    held: dict[str, bool] = {}
    runner = subprocess.Popen(
        [*cli_command(), "run", str(drill), "--out", str(tmp_path / "r"), "--no-history"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak_kib = [0]

    def watch_memory() -> None:
        while runner.poll() is None:
            try:
                status = Path(f"/proc/{runner.pid}/status").read_text()
                peak_kib[0] = max(peak_kib[0], int(status.split("VmHWM:")[1].split()[0]))
            except (OSError, IndexError, ValueError):
                pass
            time.sleep(0.1)

    threading.Thread(target=watch_memory, daemon=True).start()
    _out, err = runner.communicate(timeout=240)
    assert runner.returncode == 0, err
    report = json.loads(next((tmp_path / "r").glob("*/report.json")).read_text())
    remote = report["faults"][0]["remote"]
    assert len(remote["hosts"]) == N_HOSTS
    assert all(h["error"] is None and h["injected_at_s"] is not None for h in remote["hosts"])
    assert all(h["reverted_at_s"] is not None for h in remote["hosts"])
    for h in hosts.names:
        held[h] = hosts.sh(h, "pgrep -fc '[b]ytearray' || true").strip() not in ("", "0")
    assert not any(held.values()), held
    figures = {
        "hosts": N_HOSTS,
        "injection_spread_s": remote["injection_spread_s"],
        "revert_spread_s": remote["revert_spread_s"],
        "runner_peak_rss_mib": round(peak_kib[0] / 1024, 1),
        "inject_call_s": report["faults"][0]["timing"]["inject_call_s"],
    }
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "remote-fanout.json").write_text(json.dumps(figures, indent=2))
    assert remote["injection_spread_s"] < 1.0, figures


def test_faults_at_the_same_moment_land_together(hosts: BareHosts, tmp_path: Path) -> None:
    """Two faults due at the same ``at`` on two hosts are injected in parallel: the hosts
    acted closer together than one injection takes (one after the other, the second host
    would act only after the first call returned)."""
    faults = [
        {"id": f"squeeze-{h}", "kind": "resource", "host": h, "at": "0s", "duration": "1s",
         "memory": {"size": "96MiB"}}
        for h in hosts.names[:2]
    ]  # fmt: skip
    doc = drill_doc("same-moment", faults)
    doc["slos"] = [{"probe": "first-host-ssh", "expect": "success_rate >= 0.9"}]
    drill = write_yaml(hosts.folder / "same-moment.yaml", doc)
    run = subprocess.run(
        [*cli_command(), "run", str(drill), "--out", str(tmp_path / "r"), "--no-history"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(next((tmp_path / "r").glob("*/report.json")).read_text())
    acted = [f["remote"]["hosts"][0]["injected_at_s"] for f in report["faults"]]
    calls = [f["timing"]["inject_call_s"] for f in report["faults"]]
    assert abs(acted[0] - acted[1]) < min(calls), (acted, calls)
