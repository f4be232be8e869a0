"""The load: examples in docs/load.md are valid LoadSpecs, so the guide stays true."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from resildrill.drill.model import LoadSpec
from resildrill.load.sizing import users_for

DOC = Path(__file__).resolve().parents[3] / "docs" / "load.md"


def test_documented_load_sections_validate() -> None:
    """Every ```yaml block of docs/load.md is a `load:` section that LoadSpec accepts."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert len(blocks) >= 2
    specs = [LoadSpec.model_validate(yaml.safe_load(b)["load"]) for b in blocks]
    assert users_for(specs[0]) == 48  # "beds: 120" at the default 0.4 users per bed
    assert specs[1].remote_workers == 4
