"""`resildrill report`: re-render a run from report.json; bad files exit 2 with one line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from resildrill.cli import report as report_cmd
from resildrill.errors import InvalidInput


@pytest.fixture
def app() -> typer.Typer:
    """A typer app holding only the report command."""
    app = typer.Typer()
    report_cmd.register(app)

    @app.command("noop", hidden=True)
    def _noop() -> None:  # a second command keeps typer from flattening the app
        pass

    return app


@pytest.fixture
def run_dir(tmp_path: Path, example_path: Path) -> Path:
    """A run directory holding only report.json."""
    shutil.copy(example_path, tmp_path / "report.json")
    return tmp_path


def test_default_writes_html_junit_md_beside_the_report(app: typer.Typer, run_dir: Path) -> None:
    """Without options the three renderings land in the run directory, paths printed."""
    result = CliRunner().invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    names = [Path(line).name for line in result.output.splitlines()]
    assert names == ["report.html", "junit.xml", "summary.md"]
    assert (run_dir / "report.html").stat().st_size > 10_000


def test_formats_and_out_dir(app: typer.Typer, run_dir: Path, tmp_path: Path) -> None:
    """--format picks renderings, --out picks the directory (created if missing)."""
    out = tmp_path / "elsewhere" / "deep"
    result = CliRunner().invoke(
        app,
        ["report", str(run_dir / "report.json"), "--format", "md", "-f", "json", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "summary.md"]


def test_bad_file_is_invalid_input(app: typer.Typer, tmp_path: Path) -> None:
    """A broken report.json raises InvalidInput (exit code 2) naming the file."""
    (tmp_path / "report.json").write_text("{")
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert isinstance(result.exception, InvalidInput)
    assert result.exception.exit_code == 2


def test_real_command_exits_2_with_one_line(tmp_path: Path) -> None:
    """The installed CLI prints one line to stderr and exits 2 for a missing report."""
    proc = subprocess.run(
        [sys.executable, "-m", "resildrill", "report", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "no such report" in proc.stderr
