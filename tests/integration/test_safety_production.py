"""The production guard end to end: refused without --allow-production, refused with it
unless the target names who approved the drill, run with both."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.support.tiny import (
    load_report,
    process_fault,
    read_pid,
    resildrill,
    write_drill,
    write_target,
)

from resildrill.faults.process import proc_state

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def production_target(folder: Path, port: int, approved_by: str | None) -> None:
    path = write_target(folder, port, recovery="restart")
    doc = yaml.safe_load(path.read_text())
    doc["environment"] = "production"
    if approved_by is not None:
        doc["approved_by"] = approved_by
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_allow_production_without_approval_is_refused(web: tuple[Path, int]) -> None:
    """--allow-production alone: exit 2, one line naming approved_by, nothing injected."""
    folder, port = web
    production_target(folder, port, approved_by=None)
    drill = write_drill(folder, "prod-unapproved", [process_fault("freeze", "1s")])
    pid = read_pid(folder / "web.pid") or 0
    result = resildrill("run", str(drill), "--allow-production", "--out", str(folder / "reports"))
    assert result.returncode == 2, result.stderr
    assert "approved_by" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (folder / "reports").exists()
    assert proc_state(pid) in ("S", "R")


def test_allow_production_with_approval_runs(web: tuple[Path, int]) -> None:
    """--allow-production and an approver in the target: the drill runs and reverts."""
    folder, port = web
    production_target(folder, port, approved_by="CAB-2026-114 (J. Okafor, clinical safety)")
    drill = write_drill(folder, "prod-approved", [process_fault("freeze", "500ms")])
    result = resildrill("run", str(drill), "--allow-production", "--out", str(folder / "reports"))
    assert result.returncode == 0, result.stdout + result.stderr
    report = load_report(Path(result.stdout.strip().splitlines()[-1]))
    assert report["faults"][0]["injected_at_s"] is not None
    assert report["target"]["environment"] == "production"
    assert report["target"]["approved_by"] == "CAB-2026-114 (J. Okafor, clinical safety)"
    html = (Path(result.stdout.strip().splitlines()[-1]) / "report.html").read_text()
    assert "drill approved by CAB-2026-114" in html
    assert proc_state(read_pid(folder / "web.pid") or 0) in ("S", "R")
