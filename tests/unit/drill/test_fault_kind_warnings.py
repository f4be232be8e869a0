"""`validate` prints the warnings a fault kind gives about its own spec (heat's scaling)."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from resildrill.cli import app

ROOT = Path(__file__).resolve().parents[3]


def test_heat_cooling_after_fault_end_is_warned(tmp_path: Path) -> None:
    """A heatwave shorter than its cooling-loss span is a located warning, exit 0."""
    shutil.copytree(ROOT / "targets", tmp_path / "targets")
    (tmp_path / "drills").mkdir()
    text = (ROOT / "drills" / "heatwave.yaml").read_text()
    assert "    duration: 230s" in text
    drill = tmp_path / "drills" / "short-heatwave.yaml"
    drill.write_text(text.replace("    duration: 230s", "    duration: 60s", 1))
    result = CliRunner().invoke(app, ["validate", str(drill)])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.splitlines() if "warning:" in ln]
    assert len(lines) == 1
    assert "faults[0]: warning: cooling is restored after the fault ends" in lines[0]
