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


def test_installed_package_runs_the_demo_from_an_empty_folder(tmp_path: Path) -> None:
    """`pip install .` into a fresh venv, then `resildrill demo` from an empty folder: the
    demo drill and the ward EHR travel as package data and a report is written. (The
    dependencies are lent from the project's venv by a path entry, to stay offline-fast;
    resildrill itself is the installed copy, not this checkout.)"""
    import os
    import shutil
    import site
    import sys

    source = tmp_path / "src-copy"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copy(ROOT / "README.md", source)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            str(source),
        ],
        check=True,
        timeout=170,
        capture_output=True,
    )
    lib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(lib, "lend-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    result = subprocess.run(
        [str(venv / "bin" / "resildrill"), "demo"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    where = subprocess.run(
        [str(python), "-c", "import resildrill; print(resildrill.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=empty,
        env=env,
    ).stdout
    assert str(venv) in where, where  # the installed copy ran, not this checkout
    [run_dir] = (empty / "reports").iterdir()
    report = json.loads((run_dir / "report.json").read_text())
    assert report["drill"]["name"] == "demo-gateway-loss"
    assert report["exit_code"] == 0 and (run_dir / "report.html").exists()
