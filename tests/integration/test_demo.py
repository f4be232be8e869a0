"""The README's two commands: the first runs a real drill and writes a report."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def quick_start() -> list[str]:
    """The commands of README.md's first fenced block under '## Quick start'."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```(?:bash)?\n(.*?)```", section, re.S)
    assert block is not None
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_has_exactly_two_commands_and_ci_runs_the_second() -> None:
    """Quick start holds the demo and the test command; .ci/run calls that same test command."""
    commands = quick_start()
    assert commands == ["./dev demo", "./dev test"]
    assert "./dev test" in (ROOT / ".ci" / "run").read_text()


def test_demo_runs_a_real_drill_and_writes_reports(tmp_path: Path) -> None:
    """`./dev demo` starts the ward EHR, loses its gateway, recovers, and writes every report."""
    result = subprocess.run(
        [str(ROOT / "dev"), "demo", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=170,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    for name in ("report.json", "report.html", "junit.xml", "summary.md", "journal.jsonl"):
        assert (run_dir / name).exists(), name
    report = json.loads((run_dir / "report.json").read_text())
    fault = report["faults"][0]
    assert report["outcome"] == "passed"
    assert fault["recovery"]["outage_s"] > 0.3  # a visible outage ...
    assert fault["recovery"]["recovered"] is True  # ... and a recovery
