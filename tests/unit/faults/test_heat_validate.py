"""`validate` warns about a heat fault whose servers can be lost with no repair step to hold."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resildrill.cli import app

ROOT = Path(__file__).resolve().parents[3]
FAULT_LINE = "  - id: heatwave\n"
LOSS = "        retry_interval: 5m  # DL380 G3: retries every ~5 min\n"


def heatwave(tmp_path: Path, *, lost: bool, manual: str | None) -> Path:
    """drills/heatwave.yaml (fault at 0s, end 230s), replica-a losable, an optional step."""
    shutil.copytree(ROOT / "targets", tmp_path / "targets")
    (tmp_path / "drills").mkdir()
    text = (ROOT / "drills" / "heatwave.yaml").read_text()
    assert text.count(FAULT_LINE) == 1 and LOSS in text
    if lost:
        text = text.replace(LOSS, LOSS + "        hardware_loss_after: 10m\n", 1)
    if manual is not None:
        text = text.replace(
            "gates:\n",
            f"manual:\n  - id: repair\n    at: {manual}\n    prompt: replace the disks\ngates:\n",
            1,
        )
    drill = tmp_path / "drills" / "heatwave.yaml"
    drill.write_text(text)
    return drill


def repair_warnings(drill: Path) -> list[str]:
    result = CliRunner().invoke(app, ["validate", str(drill)])
    assert result.exit_code == 0, result.output  # a warning, not an error
    return [ln for ln in result.output.splitlines() if "can be lost" in ln]


@pytest.mark.parametrize("manual", [None, "230s", "240s"])
def test_losable_server_without_a_repair_step_inside_the_fault_is_warned(
    tmp_path: Path, manual: str | None
) -> None:
    """No step, or one at/after the fault's end (the revert comes first), is a located warning."""
    drill = heatwave(tmp_path, lost=True, manual=manual)
    line = drill.read_text().splitlines(keepends=True).index(FAULT_LINE) + 1
    (warning,) = repair_warnings(drill)
    assert warning.startswith(f"{drill}:{line}:5: faults[0]: warning: server 'replica-a' can be")
    assert "between this fault's start (0s) and its end (230s)" in warning
    assert "repair step just before 230s" in warning


@pytest.mark.parametrize(("lost", "manual"), [(True, "225s"), (True, "0s"), (False, None)])
def test_a_repair_step_inside_the_fault_or_no_losable_server_is_quiet(
    tmp_path: Path, lost: bool, manual: str | None
) -> None:
    """A step at or after the start and before the end holds the end; nothing to lose: quiet."""
    assert repair_warnings(heatwave(tmp_path, lost=lost, manual=manual)) == []
