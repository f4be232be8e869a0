"""The JSON renderer: report.json, the stable ``resildrill.report/v1`` form of a DrillReport.

Adds nothing to the model: what is written is exactly what :func:`load_report` reads back.
"""

from __future__ import annotations

from pathlib import Path

from resildrill.report.model import DrillReport, write_report_json

__all__ = ["FILENAME", "render"]

FILENAME = "report.json"


def render(report: DrillReport, out: Path) -> Path:
    """Write ``report`` as JSON to ``out`` (a file, or a directory to hold report.json)."""
    target = out / FILENAME if out.is_dir() else out
    return write_report_json(report, target)
