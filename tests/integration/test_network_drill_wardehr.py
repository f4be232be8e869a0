"""A network drill on the bundled ward EHR: 800 ms on the gateway -> replica-a hop, under load.

`target up` starts the embedded Toxiproxy server before the stack (the hop runs through it);
the drill adds a latency toxic through the Toxiproxy API and removes it; the report measures
the workflows' slowdown. The toxic's absence is checked on the API itself afterwards.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import ROOT
from tests.support.tiny import load_report, resildrill

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TARGET = ROOT / "targets" / "ward-ehr" / "target-proxied.yaml"
DRILL = ROOT / "drills" / "replica-latency.yaml"
API = "http://127.0.0.1:18474"


@pytest.fixture
def proxied_ward() -> Iterator[None]:
    """The proxied ward EHR, stopped (with its proxy) at the end."""
    up = resildrill("target", "up", str(TARGET), timeout=90)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield
    finally:
        down = resildrill("target", "down", str(TARGET), timeout=60)
        assert "toxiproxy" in down.stdout


def test_latency_on_a_hop_is_measured_and_removed(proxied_ward: None, tmp_path: Path) -> None:
    """The toxic slows the workflows (degraded > 0), is removed at the end, and exit is 0."""
    result = resildrill("run", str(DRILL), "--out", str(tmp_path), timeout=150)
    assert result.returncode == 0, result.stderr
    report = load_report(Path(result.stdout.strip().splitlines()[-1]))
    fault = report["faults"][0]
    assert fault["kind"] == "network" and fault["reverted_at_s"] is not None
    assert fault["recovery"]["degraded_s"] > 0
    breached = {s["name"]: s["breached_s"] for s in report["slos"]}
    assert breached["obs round stays fast"] > 0 or breached["drug round stays fast"] > 0
    with urllib.request.urlopen(f"{API}/proxies/gateway-to-replica-a/toxics", timeout=2) as r:
        assert json.load(r) == []
