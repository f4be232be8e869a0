"""The examples in docs/drill-format.md load and validate, so the reference stays true."""

from __future__ import annotations

import re
from pathlib import Path

from resildrill.drill.loader import load_drill
from resildrill.faults.process import ProcessFaultBackend
from resildrill.plugins import FaultRegistry

ROOT = Path(__file__).resolve().parents[3]
BLOCK = re.compile(r"```yaml\n# file: (\S+)\n(.*?)```", re.DOTALL)


def test_documented_drill_and_target_are_valid(tmp_path: Path) -> None:
    """The documented target and drill load together without errors or warnings."""
    text = (ROOT / "docs" / "drill-format.md").read_text()
    blocks = dict(BLOCK.findall(text))
    assert set(blocks) == {"target.yaml", "drill.yaml"}
    for name, body in blocks.items():
        (tmp_path / name).write_text(body)
    loaded = load_drill(tmp_path / "drill.yaml", FaultRegistry({"process": ProcessFaultBackend}))
    assert loaded.warnings == [] and loaded.target.warnings == []
    assert loaded.spec.faults[0].kind == "process"
