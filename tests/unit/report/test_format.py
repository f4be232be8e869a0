"""Shared wording: figures read the same in HTML, JUnit and Markdown."""

from __future__ import annotations

import pytest

from resildrill.report import format as fmt
from resildrill.report.model import Gate


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "—"), (0.0, "0.0 s"), (2.34, "2.3 s"), (65.2, "1 min 05.2 s"), (3725.0, "1 h 02 min")],
)
def test_secs(value: float | None, text: str) -> None:
    """Durations read as seconds, minutes or hours."""
    assert fmt.secs(value) == text


def test_availability_never_rounds_up() -> None:
    """99.999% availability must not be shown as 100%."""
    assert fmt.pct(0.99999) == "99.99%"
    assert fmt.pct(1.0) == "100.00%"
    assert fmt.pct(0.6) == "60.00%"


def test_gate_wording() -> None:
    """Gates read with their direction and unit; the producer's reason wins."""
    gate = Gate(name="min_availability", limit=0.99, value=0.95, passed=False)
    assert fmt.gate_limit(gate) == "≥ 99.00%"
    assert fmt.gate_reason(gate) == "Availability: measured 95.00%, limit ≥ 99.00%"
    named = Gate(name="max_failed_actions.nurse_observations", limit=0, value=3, passed=False)
    assert fmt.gate_label(named) == "Failed clinical actions (nurse_observations)"
    assert fmt.gate_limit(named) == "≤ 0"
    assert fmt.gate_reason(Gate(name="x", passed=False, reason="because")) == "because"


def test_gate_with_an_object_limit() -> None:
    """A gate whose limit is an object (regression) still reads, without a direction."""
    gate = Gate(
        name="regression",
        limit={"metric": "time_to_recover", "margin": 0.2},
        value=None,
        passed=False,
    )
    assert fmt.gate_limit(gate) == '{"margin": 0.2, "metric": "time_to_recover"}'
    assert "no value could be measured" in fmt.gate_reason(gate)
