"""The example CI pipelines in docs/ci/ are valid YAML and their commands run as written.

Each ``run:`` step (GitHub Actions) and each ``script:``/``after_script:`` line (GitLab CI)
runs verbatim in bash, in a scratch workspace, with only ``DRILL`` pointed at a tiny local
service standing in for staging. The install steps install ``$RESILDRILL_PACKAGE``;
that step runs once here, into a throwaway venv from a copy of this checkout, and the
other steps use the resildrill of this venv.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import ROOT, ManagedProcesses, free_port, wait_http
from tests.support.tiny import SERVICE, kill_pidfile, write_drill, write_target

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

CI = ROOT / "docs" / "ci"
INSTALL = re.compile(r'^python -m pip install "\$RESILDRILL_PACKAGE"$')


@pytest.fixture
def staging(tmp_path: Path, procs: ManagedProcesses) -> Any:
    """A tiny HTTP service and its target, standing in for the staging system."""
    port = free_port()
    folder = tmp_path / "staging"
    folder.mkdir()
    pidfile = folder / "web.pid"
    procs.start(str(SERVICE), "--port", str(port), "--pidfile", str(pidfile))
    wait_http(port)
    write_target(folder, port, recovery="restart")
    yield folder
    kill_pidfile(pidfile)


def kill_drill(folder: Path, **gates: Any) -> Path:
    """A short drill that kills the service for 1 s and restarts it."""
    fault = {"id": "kill", "kind": "process", "service": "web", "action": "kill", "at": "0s",
             "duration": "1s"}  # fmt: skip
    return write_drill(folder, "ci-gateway-loss", [fault], **({"gates": gates} if gates else {}))


def bash(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a step the way the CI runners do: bash, errexit and pipefail."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def base_env(variables: dict[str, Any], drill: Path) -> dict[str, str]:
    """The process environment plus the pipeline's variables, with DRILL substituted."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("RESILDRILL_HISTORY", None)
    for key, value in variables.items():
        env[key] = str(value)
    env["DRILL"] = str(drill)
    return env


def history_runs(workspace: Path) -> list[tuple[str, str]]:
    """(drill, outcome) of each run in the workspace's history file."""
    with sqlite3.connect(workspace / ".resildrill" / "history.sqlite") as db:
        return list(db.execute("SELECT drill, outcome FROM runs"))


def test_github_actions_workflow_runs_as_written(staging: Path, tmp_path: Path) -> None:
    """The workflow's steps run in order; a passing drill leaves a report and a history."""
    doc = yaml.safe_load((CI / "github-actions.yml").read_text())
    steps = doc["jobs"]["drill"]["steps"]
    assert all(("run" in s) != ("uses" in s) for s in steps)
    runs = [s for s in steps if "run" in s]
    installs = [s for s in runs if s.get("id") == "install"]
    assert [INSTALL.match(s["run"].strip()) is not None for s in installs] == [True]
    assert {"actions/upload-artifact@v4", "actions/cache/save@v4"} <= {s.get("uses") for s in steps}
    variables = {**doc.get("env", {}), **doc["jobs"]["drill"].get("env", {})}
    variables = {k: re.sub(r"\$\{\{[^}]*\}\}", "test", str(v)) for k, v in variables.items()}
    env = base_env(variables, kill_drill(staging))
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    failed = False
    for step in runs:
        if step in installs:
            continue
        # Expressions are never interpolated into shell text (script injection).
        assert "${{" not in step["run"]
        if failed and "always()" not in str(step.get("if", "")):
            continue
        result = bash(step["run"], workspace, env)
        assert result.returncode == 0, f"{step['name']}: {result.stdout}\n{result.stderr}"
        failed = failed or result.returncode != 0
    reports = list(workspace.glob("reports/*/report.json"))
    assert len(reports) == 1
    assert history_runs(workspace) == [("ci-gateway-loss", "passed")]


def test_gitlab_ci_job_runs_as_written_and_fails_on_a_gate(staging: Path, tmp_path: Path) -> None:
    """The job's script fails (exit 1) on an impossible gate; after_script still imports it."""
    doc = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    job = doc["resilience-drill"]
    assert job["stage"] in doc["stages"]
    assert [INSTALL.match(line) is not None for line in job["before_script"]] == [True]
    assert job["artifacts"]["when"] == "always"
    ci_vars = {"CI_COMMIT_SHA": "0123abc"}
    variables = {k: os.path.expandvars(str(v)) for k, v in doc["variables"].items()}
    env = base_env({**ci_vars, **variables}, kill_drill(staging, max_time_to_recover="1ms"))
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    script = bash("\n".join(job["script"]), workspace, env)
    assert script.returncode == 1, script.stderr
    assert "max_time_to_recover" in script.stderr
    after = bash("\n".join(job["after_script"]), workspace, env)
    assert after.returncode == 0, after.stderr
    assert "added" in after.stdout
    assert "ci-gateway-loss" in after.stdout
    assert history_runs(workspace) == [("ci-gateway-loss", "failed")]
    for pattern in job["artifacts"]["paths"] + [job["artifacts"]["reports"]["junit"]]:
        assert list(workspace.glob(pattern)), pattern


def test_install_step_installs_the_configured_package(tmp_path: Path) -> None:
    """The workflow's install step, run verbatim in a fresh venv with RESILDRILL_PACKAGE
    pointing at a copy of this checkout, installs resildrill at this version (its
    dependencies come from the same index in real CI; left out here to stay offline-fast)."""
    doc = yaml.safe_load((CI / "github-actions.yml").read_text())
    [install] = [s for s in doc["jobs"]["drill"]["steps"] if s.get("id") == "install"]
    assert "git+" in doc["env"]["RESILDRILL_PACKAGE"]  # pinned to a tag, not PyPI's name
    source = tmp_path / "resildrill-src"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {
        **os.environ,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "RESILDRILL_PACKAGE": str(source),
        "PIP_NO_DEPS": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    result = bash(install["run"], tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr
    shown = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "show", "resildrill"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Name: resildrill" in shown.stdout
