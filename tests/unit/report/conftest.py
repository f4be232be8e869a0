"""Fixtures for report tests: the example report of tests/fixtures, loaded as a value."""

from __future__ import annotations

from pathlib import Path

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
