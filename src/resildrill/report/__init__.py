"""Reports: the ``DrillReport`` value (report.json) and the renderers that format it.

``report.json`` is the source of truth; HTML, JUnit XML and Markdown are rendered from it
alone (``resildrill report``), so a report can be re-rendered years later. Renderers live
in ``render_*.py``, each a ``render(report, out) -> Path`` that computes nothing.
"""

from __future__ import annotations

from resildrill.report.model import SCHEMA, DrillReport, load_report, write_report_json

__all__ = ["SCHEMA", "DrillReport", "load_report", "write_report_json"]
