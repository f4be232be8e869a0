"""junit.xml: valid against a JUnit XSD, read by junitparser, one case per gate and fault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import junitparser
import pytest
import xmlschema

from resildrill.report import render_junit
from resildrill.report.model import DrillReport

XSD = Path(__file__).resolve().parents[2] / "fixtures" / "junit.xsd"


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    """The JUnit schema shipped under tests/fixtures."""
    return xmlschema.XMLSchema(XSD)


def test_valid_against_the_junit_schema(
    example: DrillReport, tmp_path: Path, schema: xmlschema.XMLSchema
) -> None:
    """The file validates against the Jenkins/Ant JUnit XSD (which forbids timestamps)."""
    path = render_junit.render(example, tmp_path)
    assert path.name == "junit.xml"
    schema.validate(path)


def test_junitparser_reads_the_expected_cases(example: DrillReport, tmp_path: Path) -> None:
    """A real JUnit consumer sees one case per gate then per fault, named stably."""
    path = render_junit.render(example, tmp_path / "junit.xml")
    suites = list(junitparser.JUnitXml.fromfile(str(path)))
    assert len(suites) == 1
    suite = suites[0]
    assert suite.name == "ward-gateway-loss"
    cases = {case.name: case for case in suite}
    assert list(cases) == [
        "all_faults_recovered",
        "max_time_to_recover",
        "max_degraded",
        "max_relapses",
        "min_availability",
        "gateway-latency",
        "db-kill",
    ]
    assert {case.classname for case in suite} == {"ward-gateway-loss"}
    assert suite.tests == 7 and suite.failures == 5 and suite.errors == 0
    assert cases["gateway-latency"].is_passed
    assert cases["max_relapses"].is_passed
    (failure,) = cases["db-kill"].result
    assert isinstance(failure, junitparser.Failure)
    assert "db-kill did not recover" in (failure.message or "")
    (gate_failure,) = cases["all_faults_recovered"].result
    assert gate_failure.message == "db-kill did not recover before the recovery window ended"
    (measured,) = cases["max_degraded"].result
    assert "measured 41.0 s, limit ≤ 30.0 s" in (measured.message or "")


def test_output_is_stable(example: DrillReport) -> None:
    """The same report renders byte-for-byte the same (no timestamps, no durations)."""
    text = render_junit.render_text(example)
    assert text == render_junit.render_text(example)
    assert "timestamp" not in text and 'time="' not in text


def test_incomplete_run_adds_an_error_case(
    not_ready: DrillReport, tmp_path: Path, schema: xmlschema.XMLSchema
) -> None:
    """A run that never injected anything is an error in CI, not an empty green suite."""
    path = render_junit.render(not_ready, tmp_path)
    schema.validate(path)
    (suite,) = list(junitparser.JUnitXml.fromfile(str(path)))
    (case,) = list(suite)
    assert case.name == "run"
    (error,) = case.result
    assert isinstance(error, junitparser.Error)
    assert error.message == "probe ehr-api failed during baseline"
    assert error.type == "not_ready"


def test_special_characters_are_escaped(
    example_data: dict[str, Any], tmp_path: Path, schema: xmlschema.XMLSchema
) -> None:
    """Ids and reasons with XML metacharacters still give a valid file."""
    example_data["faults"][1]["id"] = 'db-kill <"&">'
    example_data["gates"][0]["reason"] = "a < b & c"
    path = render_junit.render(DrillReport.model_validate(example_data), tmp_path)
    schema.validate(path)
    names = [c.name for c in next(iter(junitparser.JUnitXml.fromfile(str(path))))]
    assert 'db-kill <"&">' in names


def test_fault_not_injected_is_an_error(
    example_data: dict[str, Any], tmp_path: Path, schema: xmlschema.XMLSchema
) -> None:
    """A fault whose injection failed is an <error> carrying the backend's message."""
    example_data["faults"][1].update(injected_at_s=None, recovery=None, error="refused")
    path = render_junit.render(DrillReport.model_validate(example_data), tmp_path)
    schema.validate(path)
    cases = {c.name: c for c in next(iter(junitparser.JUnitXml.fromfile(str(path))))}
    (error,) = cases["db-kill"].result
    assert isinstance(error, junitparser.Error)
    assert error.message == "db-kill was not injected: refused"
