"""The pytest plugin in a real pytest run against the bundled ward EHR.

A generated test file uses the ``resildrill_drill`` fixture for a drill that passes and the
``resildrill`` marker for one whose gate no system can pass; the inner pytest must report
one pass with the drill's figures, one failure naming the gate, and no gevent in its process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import ROOT

from wardehr import stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DRILLS = ROOT / "tests" / "drills" / "plugin"

TESTS = '''
import sys

import pytest


def test_gateway_loss_passes(resildrill_drill):
    """The gateway comes back: the drill passes its gates."""
    result = resildrill_drill("gateway-loss.yaml")
    assert result.exit_code == 0
    assert result.report["faults"][0]["recovery"]["recovered"] is True


@pytest.mark.resildrill("impossible-gate.yaml")
def test_impossible_gate_fails():
    """No system recovers in 1 ms: the marker fails this test before its body."""
    raise AssertionError("the body must not run after a failed drill")


def test_no_gevent_in_this_process():
    """Whichever way the drills ran, gevent and Locust never came into this process."""
    assert not {"gevent", "locust"} & {m.split(".")[0] for m in sys.modules}
'''


@pytest.fixture
def ehr(tmp_path: Path) -> Iterator[Path]:
    """The bundled ward EHR on free ports, with the plugin's drills beside its target."""
    folder = tmp_path / "suite"
    target = stack.write_target(folder, restart_delay="300ms")
    for drill in DRILLS.glob("*.yaml"):
        shutil.copy(drill, folder / drill.name)
    stack.up(target)
    try:
        yield folder
    finally:
        stack.down(target)


@pytest.mark.parametrize("mode", ["child-process", "in-process"])
def test_plugin_passes_one_drill_and_fails_the_impossible_gate(ehr: Path, mode: str) -> None:
    """Inner pytest: one drill passes with its figures shown, one fails naming its gate;
    the drills run as child processes, or through the library API in the test process."""
    (ehr / "test_drills.py").write_text(TESTS)
    junit = ehr / "junit.xml"
    args = ["-rA", "-p", "no:cacheprovider", f"--junitxml={junit}", "--resildrill-no-history"]
    if mode == "in-process":
        args.append("--resildrill-in-process")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "test_drills.py"],
        cwd=ehr,
        capture_output=True,
        text=True,
        timeout=100,
        # Wide enough that the short summary keeps the whole failure message.
        env={**os.environ, "COLUMNS": "400", "RESILDRILL_HISTORY": str(ehr / "history.sqlite")},
    )
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "1 failed, 2 passed" in out, out
    assert "PASSED test_drills.py::test_gateway_loss_passes" in out
    assert (
        "FAILED test_drills.py::test_impossible_gate_fails - Failed: "
        "drill plugin-impossible-gate failed gate(s): max_time_to_recover (value" in out
    ), out
    assert "the body must not run" not in out
    assert "another exception occurred" not in out
    # The figures, as a report section of the passing test.
    assert "resildrill plugin-gateway-loss" in out
    assert "fault gateway-killed (process): detect" in out
    assert "gate max_time_to_recover: pass" in out
    # And as JUnit properties, for CI dashboards.
    props = {
        p.get("name"): p.get("value")
        for p in ET.parse(junit).iter("property")
        if (p.get("name") or "").startswith("resildrill.plugin-gateway-loss.")
    }
    assert props["resildrill.plugin-gateway-loss.outcome"] == "passed"
    ttr = float(props["resildrill.plugin-gateway-loss.gateway-killed.time_to_recover_s"] or "nan")
    assert 0.0 < ttr < 10.0
