"""Fixtures for report tests: the example report of tests/fixtures, loaded as a value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from resildrill.report.model import DrillReport, load_report

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
EXAMPLE = FIXTURES / "report-example.json"


@pytest.fixture(scope="session")
def example() -> DrillReport:
    """The example report: two faults, gateway-latency recovered, db-kill not."""
    return load_report(EXAMPLE)


@pytest.fixture(scope="session")
def example_path() -> Path:
    """Path of the example report.json."""
    return EXAMPLE


@pytest.fixture
def example_data(example_path: Path) -> dict[str, Any]:
    """The example report as a fresh dict, to change before validating."""
    data: dict[str, Any] = json.loads(example_path.read_text())
    return data


@pytest.fixture
def not_ready(example_data: dict[str, Any]) -> DrillReport:
    """The example turned into a run whose baseline failed: no faults, no load, no gates."""
    data = example_data
    data.update(outcome="not_ready", exit_code=5, reason="probe ehr-api failed during baseline")
    data.update(faults=[], gates=[], load=None, integrity=None, summary=None, services=[])
    data["timeline"] = {"resolution_s": 0.1, "series": {}, "marks": []}
    return DrillReport.model_validate(data)
