"""The history and compare commands' text output, in-process on small reports."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.history.reports import day, make_report
from typer.testing import CliRunner

from resildrill.cli import app


def write_run(folder: Path, run_id: str, **figures: object) -> Path:
    """A run folder holding one report.json."""
    run_dir = folder / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "report.json").write_text(json.dumps(make_report(run_id, **figures)))  # type: ignore[arg-type]
    return run_dir


def test_import_a_folder_of_run_folders_then_list(tmp_path: Path) -> None:
    """A downloaded artefact folder imports every run in it; the listing shows their figures."""
    reports = tmp_path / "reports"
    write_run(reports, "gateway-loss-a", started_at=day(1), ttr=2.0)
    write_run(reports, "gateway-loss-b", started_at=day(2), ttr=3.5, outage=4.0)
    db = str(tmp_path / "h.sqlite")
    runner = CliRunner()
    imported = runner.invoke(app, ["history", "import", str(reports), "--db", db])
    assert imported.exit_code == 0, imported.output
    assert imported.output.count(": added") == 2
    listed = runner.invoke(app, ["history", "--db", db, "--drill", "gateway-loss"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[1].split()[:3] == ["started", "(UTC)", "run"]
    assert "gateway-loss-a  passed   2.0s" in lines[2]
    assert "gateway-loss-b  passed   3.5s     +1.5s" in lines[3]
    overview = runner.invoke(app, ["history", "--db", db])
    assert "2 run(s) of 1 drill(s)" in overview.output


def test_compare_text_names_better_and_worse(tmp_path: Path) -> None:
    """compare prints both runs, each figure's change and a count of better and worse."""
    a = write_run(tmp_path, "run-a", ttr=2.0, outage=3.0)
    b = write_run(tmp_path, "run-b", ttr=1.0, outage=5.0)
    result = CliRunner().invoke(app, ["compare", str(a), str(b / "report.json")])
    assert result.exit_code == 0, result.output
    rows = {
        line.split()[1]: line
        for line in result.output.splitlines()
        if line.startswith(("run ", "fault "))
    }
    assert rows["kill.time_to_recover_s"].split()[-3:] == ["-1", "(-50%)", "better"]
    assert rows["outage_s"].split()[-3:] == ["+2", "(+67%)", "worse"]
    assert result.output.rstrip().endswith("2 figure(s) better, 2 worse")
