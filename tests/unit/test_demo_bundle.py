"""The demo travels as package data: its installed copy equals the repository's files."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "src" / "resildrill" / "demo"


def test_bundled_drill_is_the_repository_demo() -> None:
    repo = yaml.safe_load((ROOT / "drills" / "demo.yaml").read_text())
    bundled = yaml.safe_load((BUNDLE / "drill.yaml").read_text())
    assert repo.pop("target") == "../targets/ward-ehr/target.yaml"
    assert bundled.pop("target") == "target.yaml"
    assert bundled == repo


def test_bundled_target_is_the_repository_ward_ehr() -> None:
    repo = yaml.safe_load((ROOT / "targets" / "ward-ehr" / "target.yaml").read_text())
    bundled = yaml.safe_load((BUNDLE / "target.yaml").read_text())
    assert (repo.pop("run_dir"), bundled.pop("run_dir")) == ("../../.state/ward-ehr", "run")
    assert bundled == repo
