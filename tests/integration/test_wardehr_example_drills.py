"""The example drills replica-loss, total-loss and database-freeze, run as a user runs them.

Each test starts a fresh ward EHR on free ports (``stack.write_target``: the bundled target's
shape, its ``identity:`` check included), runs a copy of ``drills/<name>.yaml`` through the real
CLI (``python -m resildrill run COPY --yes --no-history --out TMP``), always stops the stack by
its pidfiles, and checks what the drill's own description and comments promise.

The copies (written into tmp_path) differ from the drills in two ways only, to keep CI time
small: ``target:`` names the free-port target by its absolute path, and ``phases`` are shorter
(a 2 s baseline; a recovery window long enough for the drill's own gates plus its stability
window). Faults, SLOs, windows and gates are the drill's own, checked equal below.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from tests.support.tiny import load_report

from wardehr import stack
from wardehr.testing import (
    RunningStack,
    postgres_unavailable,
    world_readable_tempdir,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
_NO_POSTGRES = postgres_unavailable()


@contextlib.contextmanager
def ward_ehr(
    folder: Path, drill: str, store: Literal["sqlite", "postgres"]
) -> Iterator[RunningStack]:
    """A fresh ward EHR on free ports, stopped by its pidfiles whatever happens. Its target
    is named after the drill: the runner's lock is per target name, so a drill someone runs
    meanwhile against another ward EHR on this host does not refuse this one."""
    path = stack.write_target(folder, store=store, name=f"ward-ehr-example-{drill}")
    try:
        yield RunningStack(path, stack.up(path))
    finally:
        stack.down(path)


def run_example(
    name: str,
    ehr: RunningStack,
    folder: Path,
    phases: dict[str, str],
) -> tuple[dict[str, Any], Path]:
    """Run a copy of drills/<name>.yaml (shorter ``phases``) against ``ehr`` through the CLI;
    returns its report.json and run folder, after checking it passed (exit 0: every gate
    held) with every fault reverted."""
    original = yaml.safe_load((ROOT / "drills" / f"{name}.yaml").read_text())
    target = yaml.safe_load(ehr.target.read_text())
    assert target["identity"]["fhir_software"]  # the run below passes the identity check
    copy = {**original, "target": str(ehr.target.resolve()), "phases": phases}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(copy, sort_keys=False))
    started = time.monotonic()
    command = ["run", str(path), "--yes", "--no-history", "--out", str(folder / "reports")]
    result = subprocess.run(
        [sys.executable, "-m", "resildrill", *command],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    report = load_report(run_dir)
    as_run = yaml.safe_load(report["drill_as_run"])
    for key in ("faults", "slos", "gates", "slo_window", "stability_window"):
        assert as_run[key] == original[key], key  # only target and phases differ
    assert [g["name"] for g in report["gates"] if not g["passed"]] == []
    assert (report["outcome"], report["exit_code"]) == ("passed", 0)
    assert not [f for f in report["faults"] if f["still_injected"]]
    print(
        f"\n{name}: outage {report['summary']['outage_s']} s, "
        + ", ".join(
            f"{f['id']} recovered {f['recovery']['recovered']} in "
            f"{f['recovery']['time_to_recover_s']} s (outage {f['recovery']['outage_s']} s, "
            f"degraded {f['recovery']['degraded_s']} s)"
            for f in report["faults"]
        )
        + f"; CLI run {time.monotonic() - started:.1f} s"
    )
    return report, run_dir


def probe_failed(report: dict[str, Any], probe: str) -> list[int]:
    """The 100 ms buckets in which ``probe`` had a failed check."""
    values = report["timeline"]["series"][f"probe.{probe}.success"]["values"]
    assert any(v is not None for v in values)
    return [i for i, v in enumerate(values) if v is not None and v < 1.0]


def fault(report: dict[str, Any], fault_id: str) -> dict[str, Any]:
    """One fault of the report by id."""
    return next(f for f in report["faults"] if f["id"] == fault_id)


def test_replica_loss_is_no_clinical_outage(tmp_path: Path) -> None:
    """replica-loss: no clinical outage (the gateway probe never fails), replica-a's own probe
    fails until the supervisor has restarted it (restart delay 1 s plus start-up), within the
    drill's 6 s gate; replica-a is a new process afterwards."""
    with ward_ehr(tmp_path / "ehr", "replica-loss", "sqlite") as ehr:
        before = ehr.pid("replica-a")
        report, _ = run_example("replica-loss", ehr, tmp_path, {"baseline": "2s", "recovery": "8s"})
        assert ehr.pid("replica-a") != before
    assert report["summary"]["outage_s"] == 0.0
    assert probe_failed(report, "gateway") == []
    assert probe_failed(report, "replica-a")  # the kill was seen ...
    recovery = fault(report, "replica-a-killed")["recovery"]
    assert recovery["recovered"] is True and recovery["outage_s"] == 0.0
    assert recovery["degraded_s"] > 0
    # ... and healed by the supervisor: not before its restart delay, within the gate
    assert 1.0 <= recovery["time_to_recover_s"] <= 6.0


def test_total_loss_measures_an_outage_and_its_recovery(tmp_path: Path) -> None:
    """total-loss: every API process killed at once is a clinical outage of at least the
    restart delay (1 s) and within the drill's 8 s gate, measured on the last of the three
    kills, then recovery within the 10 s gate; each process is a new one afterwards."""
    with ward_ehr(tmp_path / "ehr", "total-loss", "sqlite") as ehr:
        services = ("gateway", "replica-a", "replica-b")
        before = {s: ehr.pid(s) for s in services}
        report, _ = run_example("total-loss", ehr, tmp_path, {"baseline": "2s", "recovery": "10s"})
        assert all(ehr.pid(s) != before[s] for s in services)
    outage = report["summary"]["outage_s"]
    assert 1.0 <= outage <= 8.0
    assert probe_failed(report, "gateway")
    last = fault(report, "replica-b-killed")
    assert last["recovery"]["truncated_by"] is None
    assert last["recovery"]["recovered"] is True
    assert last["recovery"]["outage_s"] == outage
    assert outage - 0.2 <= last["recovery"]["time_to_recover_s"] <= 10.0
    for earlier in ("gateway-killed", "replica-a-killed"):
        assert fault(report, earlier)["recovery"]["truncated_by"] is not None
    # the gateway answers again before the run ends (the last 3 s, the stability window)
    values = report["timeline"]["series"]["probe.gateway.success"]["values"]
    assert [v for v in values[-30:] if v is not None and v < 1.0] == []


@pytest.mark.skipif(_NO_POSTGRES is not None, reason=f"PostgreSQL cannot run: {_NO_POSTGRES}")
def test_database_freeze_on_postgres(tmp_path: Path) -> None:
    """database-freeze: the postmaster is frozen for 10 s and replica-a killed 2 s in.
    replica-a stays unhealthy from its kill until shortly after the thaw (it cannot reconnect
    to a frozen postmaster); the database's TCP probe passes throughout (the blind spot the
    drill's comment names). Clinicians are served by replica-b's sessions, opened at its
    start-up: no clinical outage, every gate holds (exit 0)."""
    with world_readable_tempdir() as folder, ward_ehr(folder, "database-freeze", "postgres") as ehr:
        report, _ = run_example(
            "database-freeze",
            ehr,
            tmp_path,
            {"baseline": "2s", "recovery": "6s"},
        )
        assert stack.status(ehr.target).healthy
    assert probe_failed(report, "database") == []
    frozen = fault(report, "database-frozen")
    killed = fault(report, "replica-a-killed-while-frozen")
    thawed_at = frozen["reverted_at_s"]
    assert thawed_at - frozen["injected_at_s"] == pytest.approx(10.0, abs=0.3)
    # clinicians: not a single failed check
    assert report["summary"]["outage_s"] == 0
    assert probe_failed(report, "gateway") == []
    assert killed["recovery"]["recovered"] is True
    # replica-a unhealthy from the kill until the thaw: its probe fails in the second before
    failed = probe_failed(report, "replica-a")
    assert any(thawed_at - 1.0 <= i * 0.1 < thawed_at for i in failed)
    # ... and healthy shortly after it (measured: 0.2-1.0 s)
    assert thawed_at <= killed["recovered_at_s"] <= thawed_at + 3.0
