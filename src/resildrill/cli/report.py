"""The ``resildrill report`` command: re-render a run's reports from its report.json alone.

Parses the arguments, loads the report and calls the renderers of
:mod:`resildrill.report`; a bad file is :class:`~resildrill.errors.InvalidInput` (exit 2,
one line). ``render_all`` is re-exported here for callers that compose a run; it lives in
``resildrill.report`` so lower layers need not import the CLI.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from resildrill.errors import InvalidInput

__all__ = ["register"]


class ReportFormat(StrEnum):
    """The formats ``--format`` accepts."""

    html = "html"
    junit = "junit"
    md = "md"
    json = "json"


def write_partial_report(run_dir: Path) -> Path:
    """Rebuild report.json (``partial: true``) of a run whose runner died, from its stream."""
    from resildrill import pipeline
    from resildrill.plugins import FaultRegistry

    registry = FaultRegistry.discover()
    try:
        record = pipeline.rebuild_record(run_dir, registry)
    except (ValueError, KeyError, OSError) as exc:
        raise InvalidInput(f"{run_dir}/timeline.jsonl: cannot rebuild: {exc}") from None
    analysis = pipeline.judge(record)
    return pipeline.write_json(
        pipeline.build_report(record, analysis, partial=True, registry=registry), run_dir
    )


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command(
        "report",
        help=(
            "Render a run's reports from its report.json alone: report.html (for people), "
            "junit.xml (for CI) and summary.md (for a pull request). SOURCE is a run "
            "directory or a report.json file."
        ),
    )
    def _cmd(
        source: Annotated[
            Path, typer.Argument(help="a run directory (reports/<drill>-<time>/) or report.json")
        ],
        formats: Annotated[
            list[ReportFormat] | None,
            typer.Option(
                "--format",
                "-f",
                help="html, junit, md or json; repeat for several [default: html, junit, md]",
            ),
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option("--out", "-o", help="directory to write into [default: beside SOURCE]"),
        ] = None,
    ) -> None:
        from resildrill.report import DEFAULT_FORMATS, load_report, render_all

        if source.is_dir() and not (source / "report.json").exists():
            if not (source / "timeline.jsonl").exists():
                raise InvalidInput(f"{source}: neither report.json nor timeline.jsonl here")
            write_partial_report(source)
            typer.echo(
                f"{source}: the run did not finish; partial report rebuilt from its timeline.jsonl",
                err=True,
            )
        report = load_report(source)
        chosen = [f.value for f in formats] if formats else list(DEFAULT_FORMATS)
        target = out if out is not None else (source if source.is_dir() else source.parent)
        for path in render_all(report, target, dict.fromkeys(chosen)):
            typer.echo(str(path))
