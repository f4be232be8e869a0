"""The ``resildrill run`` command: preflight, run, analyse, write reports, exit code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from resildrill.errors import (
    InvalidInput,
    ProductionRefused,
    TargetNotReady,
    ToolFailed,
    ToolProblem,
)


def render_reports(report: dict[str, object], run_dir: Path) -> list[Path]:
    """Write HTML, JUnit and Markdown next to report.json.

    report.json is already on disk: a renderer failing must never lose a measured drill, so
    a failure here is reported and `resildrill report RUN_DIR` can render again later.
    """
    from pydantic import ValidationError

    from resildrill.cli.output import console
    from resildrill.report import render_all
    from resildrill.report.model import DrillReport

    try:
        return list(render_all(DrillReport.model_validate(report), run_dir))
    except (ValidationError, OSError) as exc:
        console.print(
            f"warning: could not render HTML/JUnit/Markdown ({exc}); "
            f"report.json is complete: resildrill report {run_dir}"
        )
        return []


def run_drill_file(
    drill_path: Path,
    *,
    out: Path,
    preflight_only: bool = False,
    yes: bool = False,
    allow_production: bool = False,
    live: bool | None = None,
    history: bool = True,
) -> int:
    """Run a drill file end to end; returns the exit code.

    The run history (``$RESILDRILL_HISTORY``) is read for the report's ``trend`` and the
    regression gate, and the run is appended to it unless ``history`` is False.
    """
    from resildrill import pipeline
    from resildrill.cli.output import LiveView, console, print_result
    from resildrill.drill.loader import load_drill
    from resildrill.history import apply_history, record_run
    from resildrill.plugins import FaultRegistry
    from resildrill.runner.runner import DrillRunner

    registry = FaultRegistry.discover()
    drill = load_drill(drill_path, registry)
    for w in drill.warnings:
        console.print(str(w))
    target = drill.target.spec
    if target.environment == "production" and not allow_production:
        raise ProductionRefused(
            f"{drill.target.path}: target {target.name!r} is a production system; "
            "drills run against staging (use --allow-production only with an approval)"
        )
    if target.environment == "production" and not target.approved_by:
        raise ProductionRefused(
            f"{drill.target.path}: --allow-production needs the target to name who approved "
            "the drill ('approved_by')"
        )
    with LiveView(live) as view:
        runner = DrillRunner(
            drill,
            registry=registry,
            out_dir=out,
            steady_state=pipeline.steady_state_check,
            yes=yes,
            on_status=view.status,
            on_message=view.message,
            terminal=sys.stdin,
        )
        problems = runner.preflight()
        if problems:
            text = "preflight failed, nothing injected:\n" + "\n".join(f"  {p}" for p in problems)
            # a backend the tool cannot reach is the tool's failure (6), not the target's (5)
            if any(isinstance(p, ToolProblem) for p in problems):
                raise ToolFailed(text)
            raise TargetNotReady(text)
        if preflight_only:
            console.print(f"preflight ok: {len(drill.spec.faults)} fault(s) can be injected")
            return 0
        record = runner.run()
    analysis = pipeline.judge(record)
    report = pipeline.build_report(record, analysis, registry=registry)
    # The regression gate compares with the runs before this one, so read before appending.
    report = apply_history(report, drill.spec.gates.regression)
    pipeline.write_json(report, record.run_dir)
    if history:
        record_run(report, record.run_dir / "report.json")
    written = render_reports(report, record.run_dir)
    print_result(report)
    console.print(f"report: {record.run_dir / 'report.json'}")
    for p in written:
        console.print(f"        {p}")
    print(record.run_dir)
    return int(str(report["exit_code"]))


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("run")
    def run(
        drill: Annotated[Path, typer.Argument(help="the drill file (kind: Drill)")],
        out: Annotated[
            Path, typer.Option("--out", help="folder that receives reports/<run id>/")
        ] = Path("reports"),
        preflight: Annotated[
            bool,
            typer.Option(
                "--preflight", help="check every fault can be injected and reverted; inject nothing"
            ),
        ] = False,
        yes: Annotated[
            bool, typer.Option("--yes", "-y", help="answer manual steps at once (CI)")
        ] = False,
        allow_production: Annotated[
            bool, typer.Option("--allow-production", help="permit a production target")
        ] = False,
        history: Annotated[
            bool,
            typer.Option(
                "--history/--no-history",
                help="append the run to the run history ($RESILDRILL_HISTORY)",
            ),
        ] = True,
    ) -> None:
        """Run a drill: baseline, inject each fault, revert it, watch recovery, write reports.

        Exit codes: 0 passed, 1 a gate failed, 2 bad input, 3 aborted, 4 a fault could not be
        reverted (the message says how to undo it), 5 target not ready, 6 tool failure.
        The run folder (report.json, report.html, junit.xml, summary.md, journal.jsonl,
        timeline.jsonl) is printed on stdout.
        """
        if not drill.exists():
            raise InvalidInput(f"{drill}: no such file")
        code = run_drill_file(
            drill,
            out=out,
            preflight_only=preflight,
            yes=yes,
            allow_production=allow_production,
            history=history,
        )
        sys.stdout.flush()
        raise typer.Exit(code)
