"""The HTML renderer: report.html, one self-contained page a governance meeting can read.

Owns the jinja2 page (``templates/report.html.j2``; jinja2 is imported lazily so the CLI
starts fast). The page has inline CSS and an inline SVG chart drawn server-side by
:mod:`resildrill.report.chart`; it loads nothing from the network and runs no script, and
it prints on A4. Figures come from the report as they are; only the chart downsamples.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from resildrill.report import format as fmt
from resildrill.report.chart import render_timeline_svg
from resildrill.report.model import DrillReport

if TYPE_CHECKING:
    import jinja2

__all__ = ["FILENAME", "render", "render_text"]

FILENAME = "report.html"
_TEMPLATES = Path(__file__).parent / "templates"


@functools.cache
def _environment() -> jinja2.Environment:
    """The template environment, built once, with the shared formats as filters."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        secs=fmt.secs,
        ms=fmt.ms,
        pct=fmt.pct,
        num=fmt.num,
        clock=fmt.clock,
        gate_label=fmt.gate_label,
        gate_value=fmt.gate_value,
        gate_limit=fmt.gate_limit,
        gate_reason=fmt.gate_reason,
        fault_reason=fmt.fault_reason,
    )
    return env


def render_text(report: DrillReport) -> str:
    """The page as a string."""
    from markupsafe import Markup

    svg, legend = render_timeline_svg(report)
    word, sentence = fmt.verdict(report)
    template = _environment().get_template("report.html.j2")
    return template.render(
        r=report,
        verdict_word=word,
        verdict_sentence=sentence,
        chart=Markup(svg),
        legend=legend,
        span=report.duration_s,
        trend=(report.model_extra or {}).get("trend") or [],
    )


def render(report: DrillReport, out: Path) -> Path:
    """Write the page to ``out`` (a file, or a directory to hold report.html)."""
    target = out / FILENAME if out.is_dir() else out
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(render_text(report), encoding="utf-8")
    tmp.replace(target)
    return target
