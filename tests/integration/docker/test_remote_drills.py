"""The bundled estate and its example drills, as a user runs them: ``resildrill target up``
on targets/ward-ehr-hosts (four SSH hosts), the drills from drills/, ``target down``.

* remote-replica-freeze.yaml exits 0 on a healthy estate (the gateway fails over);
* remote-database-disk-full.yaml exits 0 and shows what a full database disk does to
  clinicians: writes fail during the fill, and only then; no acknowledged write is lost
  (the integrity read-back is the EHR's own, not our counters).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from remote_support import Estate, poller, read_poll
from tests.conftest import ROOT
from tests.support.tiny import resildrill

pytestmark = pytest.mark.timeout(300)
TARGET = ROOT / "targets" / "ward-ehr-hosts" / "target.yaml"


@pytest.fixture(scope="module")
def estate() -> Iterator[Path]:
    up = resildrill("target", "up", str(TARGET), timeout=120)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield TARGET
    finally:
        down = resildrill("target", "down", str(TARGET), timeout=120)
        assert down.returncode == 0, down.stderr


def _run(drill: str, out: Path) -> tuple[int, dict[str, Any]]:
    run = resildrill(
        "run", str(ROOT / "drills" / drill), "--out", str(out), "--no-history", timeout=200
    )
    report = json.loads(next(out.glob("*/report.json")).read_text())
    return run.returncode, report


def test_remote_replica_freeze_passes(estate: Path, tmp_path: Path) -> None:
    code, report = _run("remote-replica-freeze.yaml", tmp_path)
    assert code == 0, report.get("reason")
    [fault] = report["faults"]  # type: ignore[misc]
    [host] = fault["remote"]["hosts"]
    assert host["host"] == "replica-a" and host["injected_at_s"] is not None
    assert fault["recovery"]["time_to_detect_s"] is not None  # the replica's SLO saw it


def test_remote_database_disk_full(estate: Path, tmp_path: Path) -> None:
    code, report = _run("remote-database-disk-full.yaml", tmp_path)
    assert code == 0, report.get("reason")
    drug = report["load"]["by_workflow"]["drug_round"]  # type: ignore[index]
    assert drug["failed_actions"] > 0, drug  # writes failed while the disk was full
    assert report["integrity"]["writes_lost"] == 0  # type: ignore[index]
    [fault] = report["faults"]  # type: ignore[misc]
    assert "removed" in fault["revert"]
    series = report["timeline"]["series"]  # type: ignore[index]
    failed = series["workflow.drug_round.failures"]["values"]
    # failures only while the disk was full (a request in flight at the revert: 1 s margin)
    start = int(fault["injected_at_s"] * 10)
    end = int(fault["reverted_at_s"] * 10) + 10
    outside = [(i / 10, v) for i, v in enumerate(failed) if (i < start or i > end) and v]
    assert not outside, outside


def test_remote_rack_heat_two_hosts_in_sequence(estate: Path, tmp_path: Path) -> None:
    """Two hosts of a rack shut down in sequence (each held off by its guard freezing the
    host's supervisor), an outage only while both are off, both back after cooling. Inside
    replica-a's host a poller sees the throttle (the replica stopped and running in turn),
    the shutdown (supervisor stopped, replica gone) and the restart."""
    host = Estate(tmp_path, TARGET, "ward-ehr-hosts", {})
    snippet = (
        "r=$(cut -d' ' -f3 /proc/$(cut -d' ' -f1 /srv/host/replica-a.pid)/stat 2>/dev/null);"
        "s=$(cut -d' ' -f3 /proc/$(cut -d' ' -f1 /srv/host/supervisor.pid)/stat 2>/dev/null);"
        'echo "${r:-gone}" "${s:-gone}"'
    )
    watch = poller(host, "replica-a", snippet, tmp_path / "poll")
    try:
        code, report = _run("remote-rack-heat.yaml", tmp_path / "r")
    finally:
        watch.terminate()
        watch.wait(timeout=10)
    seen = [tuple(v.split()) for _, v in read_poll(tmp_path / "poll") if len(v.split()) == 2]
    replica_states = [r for r, _ in seen]
    assert "T" in replica_states, "never throttled (stopped) on the host"
    assert any(sup == "T" and r in ("gone", "Z") for r, sup in seen), "never held off"
    assert seen[-1][0] in ("S", "R") and seen[-1][1] in ("S", "R"), seen[-1]
    assert code == 0, report.get("reason")
    [fault] = report["faults"]  # type: ignore[misc]
    acts = fault["actions"]
    downs = [a for a in acts if a.get("action") == "shutdown"]
    ups = [a for a in acts if a.get("action") == "up"]
    assert [a["server"] for a in downs] == ["replica-a", "replica-b"], acts
    assert all("supervisor" in a["detail"] and "frozen" in a["detail"] for a in downs), downs
    assert sorted(a["server"] for a in ups) == ["replica-a", "replica-b"], acts
    # clinicians lost the EHR only while both replicas were off (from the second shutdown
    # until the first host back answered), within a second of the gateway's health checks
    both_off = min(a["at_s"] for a in ups) - downs[1]["at_s"]
    outage = report["summary"]["outage_s"]  # type: ignore[index]
    assert abs(outage - both_off) < 1.5, (outage, both_off)
