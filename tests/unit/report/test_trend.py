"""The HTML report shows the same drill's earlier runs from report.json's ``trend``."""

from __future__ import annotations

import json
from pathlib import Path

from resildrill.report.model import DrillReport
from resildrill.report.render_html import render_text

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "report-example.json"


def test_trend_rows_rendered() -> None:
    """Each earlier run is a row, followed by this run."""
    data = json.loads(FIXTURE.read_text())
    data["trend"] = [
        {
            "run_id": "a",
            "started_at": "2026-11-01T10:00:00Z",
            "time_to_recover_s": 4.2,
            "outage_s": 3.1,
            "degraded_s": 5.0,
            "availability": 0.9,
            "outcome": "passed",
            "git_commit": "abcdef1234567",
        },
        {
            "run_id": "b",
            "started_at": "2026-11-08T10:00:00Z",
            "time_to_recover_s": 2.7,
            "outage_s": 2.0,
            "degraded_s": 3.0,
            "availability": 0.95,
            "outcome": "passed",
            "git_commit": None,
        },
    ]
    html = render_text(DrillReport.model_validate(data))
    section = html[html.index('id="trend"') : html.index('id="reviewers"')]
    assert "2026-11-01T10:00:00Z" in section and "2026-11-08T10:00:00Z" in section
    assert "abcdef1234" in section and "(this run)" in section


def test_no_trend_says_so() -> None:
    """Without earlier runs the section says there are none."""
    data = json.loads(FIXTURE.read_text())
    data.pop("trend", None)
    html = render_text(DrillReport.model_validate(data))
    assert "No earlier runs of this drill" in html
