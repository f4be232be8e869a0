"""Reports: the ``DrillReport`` value (report.json) and the renderers that format it.

``report.json`` is the source of truth; HTML, JUnit XML and Markdown are rendered from it
alone (``resildrill report``), so a report can be re-rendered years later. Renderers live
in ``render_*.py``, each a ``render(report, out) -> Path`` that computes nothing; this
module names them by format and renders several at once.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path

from resildrill.report.model import SCHEMA, DrillReport, load_report, write_report_json

__all__ = [
    "DEFAULT_FORMATS",
    "FORMATS",
    "SCHEMA",
    "DrillReport",
    "load_report",
    "render",
    "render_all",
    "write_report_json",
]

#: Format name -> renderer module; imported only when used (html pulls in jinja2).
FORMATS: dict[str, str] = {
    "json": "resildrill.report.render_json",
    "html": "resildrill.report.render_html",
    "junit": "resildrill.report.render_junit",
    "md": "resildrill.report.render_md",
}

#: What a run writes next to its report.json.
DEFAULT_FORMATS: tuple[str, ...] = ("html", "junit", "md")


def render(report: DrillReport, fmt: str, out_dir: Path) -> Path:
    """Render one format into ``out_dir`` under its usual file name; return the path."""
    try:
        module = importlib.import_module(FORMATS[fmt])
    except KeyError:
        raise ValueError(f"unknown report format {fmt!r}: use {', '.join(FORMATS)}") from None
    path: Path = module.render(report, out_dir / module.FILENAME)
    return path


def render_all(
    report: DrillReport, run_dir: Path, formats: Iterable[str] = DEFAULT_FORMATS
) -> list[Path]:
    """Write report.html, junit.xml and summary.md (by default) into ``run_dir``.

    The run directory already holds report.json; this never rewrites it unless
    ``"json"`` is asked for.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return [render(report, fmt, run_dir) for fmt in formats]
