"""summary.md: a short pull-request comment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from resildrill.report import render_md
from resildrill.report.model import DrillReport


def test_summary_names_verdict_faults_and_failed_gates(
    example: DrillReport, tmp_path: Path
) -> None:
    """The comment leads with the verdict, has a row per fault and lists failed gates."""
    text = render_md.render(example, tmp_path).read_text()
    first = text.splitlines()[0]
    assert "ward-gateway-loss" in first and "FAILED" in first and "exit code 1" in first
    assert "| `gateway-latency` (network) | 0.8 s | 2.3 s | yes |" in text
    assert "| `db-kill` (process) | 0.5 s | — | **no** |" in text
    assert "**Gates:** 1 of 5 held." in text
    assert "- ❌ `max_degraded`" in text and "`max_relapses`" not in text
    assert "0 lost, 1 duplicated" in text


def test_summary_is_short(example: DrillReport) -> None:
    """A PR comment stays short: no timeline data, a few dozen lines at most."""
    text = render_md.render_text(example)
    assert len(text.splitlines()) < 40
    assert len(text) < 3000


def test_table_cells_cannot_break_rows(example_data: dict[str, Any]) -> None:
    """A pipe in a fault id is escaped so the table keeps its columns."""
    example_data["faults"][0]["id"] = "a|b"
    text = render_md.render_text(DrillReport.model_validate(example_data))
    assert "`a\\|b`" in text


def test_not_ready_summary(not_ready: DrillReport) -> None:
    """A run that never started its faults says why, without a fault table."""
    text = render_md.render_text(not_ready)
    assert "NOT READY" in text and "probe ehr-api failed during baseline" in text
    assert "| Fault |" not in text


def test_drill_supplied_text_cannot_make_links_images_or_tags(
    example_data: dict[str, Any],
) -> None:
    """A reason carrying Markdown or HTML (from a drill, a target, a server's message) is
    shown as text in the pull-request comment: no image fetched, no link, no tag."""
    example_data["reason"] = (
        "![x](http://127.0.0.1:9/px.png) [click](javascript:alert(1)) <img src=x> **bold**"
    )
    text = render_md.render_text(DrillReport.model_validate(example_data))
    line = next(ln for ln in text.splitlines() if "**Reason:**" in ln)
    assert "](" not in line.replace("\\](", "")  # every link bracket escaped
    assert "\\<img" in line and " <img" not in line  # the tag shown, not rendered
    assert "\\!\\[x\\]\\(http://127.0.0.1:9/px.png\\)" in line
    assert "\\*\\*bold\\*\\*" in line
