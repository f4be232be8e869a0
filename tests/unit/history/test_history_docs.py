"""The regression gate documented in docs/history.md is a valid drill ``gates`` section."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from resildrill.drill.model import Gates

ROOT = Path(__file__).resolve().parents[3]


def test_documented_regression_gate_validates() -> None:
    """The YAML example in docs/history.md loads into the drill model as written."""
    text = (ROOT / "docs" / "history.md").read_text()
    [block] = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    gates = Gates.model_validate(yaml.safe_load(block)["gates"])
    assert gates.regression is not None
    assert gates.regression.metrics == ["time_to_recover", "outage"]
    assert (gates.regression.last_n, gates.regression.margin) == (5, 0.2)
    assert gates.regression.min_change == 0.2
