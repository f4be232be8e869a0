"""The ``resildrill history`` commands: a drill's runs over time, and importing reports.

``resildrill history`` lists the drills in the history; ``--drill NAME`` lists that
drill's runs, oldest first, with their recovery figures and each run's change against the
median of the runs before it. ``resildrill history import REPORT...`` adds reports made
elsewhere (CI artefacts); importing the same report again changes nothing. Plain text on
stdout, or ``--json``.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Annotated, Any

import typer

from resildrill.errors import InvalidInput

__all__ = ["register"]

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="the history file [default: $RESILDRILL_HISTORY, else "
        "$XDG_DATA_HOME/resildrill/history.sqlite]",
    ),
]


def _s(x: float | None, unit: str = "s") -> str:
    if x is None:
        return "-"
    if unit == "%":
        return f"{x * 100:.2f}%"
    return f"{x:.1f}s"


def table(header: list[str], rows: list[list[str]]) -> str:
    """Columns aligned with two spaces, for terminals and CI logs alike."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    head = "  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()
    return "\n".join([head, *lines])


def _trend_mark(value: float | None, before: list[float]) -> str:
    """The change against the median of the previous (up to 5) runs."""
    if value is None or not before:
        return ""
    median = statistics.median(before[-5:])
    delta = value - median
    if abs(delta) < 0.05:
        return "="
    return f"{'+' if delta > 0 else '-'}{abs(delta):.1f}s"


def show_runs(db: Path | None, drill: str, limit: int, as_json: bool) -> None:
    """Print one drill's runs, oldest first."""
    from resildrill.history import HistoryStore
    from resildrill.history.recorder import trend_entry

    with HistoryStore(db) as store:
        runs = store.runs(drill, limit=limit)
        path = store.path
    if as_json:
        entries = [trend_entry(r) | {"exit_code": r.figures.exit_code} for r in runs]
        typer.echo(json.dumps({"drill": drill, "history": str(path), "runs": entries}, indent=2))
        return
    if not runs:
        raise InvalidInput(f"no runs of drill {drill!r} in {path}")
    rows: list[list[str]] = []
    seen: list[float] = []
    for r in runs:
        f = r.figures
        rows.append(
            [
                f.started_at[:19].replace("T", " "),
                f.run_id,
                f.outcome,
                _s(f.time_to_recover_s) if f.all_recovered else "not recovered",
                _trend_mark(f.time_to_recover_s, seen),
                _s(f.time_to_detect_s),
                _s(f.outage_s),
                _s(f.degraded_s),
                _s(f.availability, "%"),
                (f.git_commit or "")[:10],
            ]
        )
        if f.completed and f.time_to_recover_s is not None:
            seen.append(f.time_to_recover_s)
    header = [
        "started (UTC)",
        "run",
        "outcome",
        "recover",
        "vs median",
        "detect",
        "outage",
        "degraded",
        "availability",
        "commit",
    ]
    typer.echo(f"drill {drill}: {len(runs)} run(s) in {path}")
    typer.echo(table(header, rows))


def show_drills(db: Path | None, as_json: bool) -> None:
    """Print every drill in the history with its latest run and recent median."""
    from resildrill.history import HistoryStore

    summary: list[dict[str, Any]] = []
    with HistoryStore(db) as store:
        path = store.path
        for name in store.drills():
            runs = store.runs(name)
            last = runs[-1].figures
            ttrs = [
                r.figures.time_to_recover_s
                for r in runs[-5:]
                if r.figures.completed and r.figures.time_to_recover_s is not None
            ]
            summary.append(
                {
                    "drill": name,
                    "runs": len(runs),
                    "last_started_at": last.started_at,
                    "last_outcome": last.outcome,
                    "last_time_to_recover_s": last.time_to_recover_s,
                    "median_time_to_recover_s_last5": statistics.median(ttrs) if ttrs else None,
                }
            )
    if as_json:
        typer.echo(json.dumps({"history": str(path), "drills": summary}, indent=2))
        return
    typer.echo(f"{sum(d['runs'] for d in summary)} run(s) of {len(summary)} drill(s) in {path}")
    if summary:
        rows = [
            [
                d["drill"],
                str(d["runs"]),
                d["last_started_at"][:19].replace("T", " "),
                d["last_outcome"],
                _s(d["last_time_to_recover_s"]),
                _s(d["median_time_to_recover_s_last5"]),
            ]
            for d in summary
        ]
        header = ["drill", "runs", "last run (UTC)", "outcome", "recover", "median (last 5)"]
        typer.echo(table(header, rows))
        typer.echo("a drill's runs: resildrill history --drill NAME")


def import_reports(db: Path | None, reports: list[Path]) -> int:
    """Import report files or run folders; returns the exit code (2 if one was unreadable)."""
    from resildrill.history import HistoryStore
    from resildrill.report.model import load_report

    code = 0
    sources: list[Path] = []
    for source in reports:
        # A downloaded artefact is often a folder of run folders: import each of them.
        inner = sorted(source.glob("*/report.json")) if source.is_dir() else []
        if inner and not (source / "report.json").exists():
            sources += inner
        else:
            sources.append(source)
    with HistoryStore(db) as store:
        for source in sources:
            try:
                report = load_report(source).model_dump(mode="json", by_alias=True)
            except InvalidInput as exc:
                typer.echo(f"resildrill: {exc}", err=True)
                code = 2
                continue
            path = source / "report.json" if source.is_dir() else source
            status = store.add(report, report_path=path, source="import")
            words = {
                "added": "added",
                "unchanged": "already in the history",
                "updated": "updated (the report changed)",
            }
            typer.echo(f"{report['run_id']}: {words[status]} (drill {report['drill']['name']})")
        typer.echo(f"history: {store.path} ({store.count()} run(s))")
    return code


def register(app: typer.Typer) -> None:
    """Add the ``history`` command group to the app."""
    group = typer.Typer(
        name="history",
        help=(
            "Runs of a drill over time, from the local run history (SQLite).\n\n"
            "Every 'resildrill run' is appended; 'history import' adds reports made "
            "elsewhere (CI artefacts). Without --drill: every drill with its latest run."
        ),
        invoke_without_command=True,
        no_args_is_help=False,
        add_completion=False,
        rich_markup_mode=None,
    )

    @group.callback()
    def _show(
        ctx: typer.Context,
        drill: Annotated[
            str | None, typer.Option("--drill", "-d", help="show this drill's runs")
        ] = None,
        db: DbOption = None,
        limit: Annotated[int, typer.Option(help="at most this many (newest) runs")] = 50,
        as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
    ) -> None:
        ctx.obj = {"db": db}
        if ctx.invoked_subcommand is not None:
            return
        from resildrill.history import default_path

        path = db or default_path()
        if not path.exists():
            # Listing never creates the file: a typo in --db must not look like an empty history.
            if drill is not None:
                raise InvalidInput(f"no runs of drill {drill!r}: no history at {path}")
            typer.echo(f"no history yet at {path} (every 'resildrill run' adds to it)")
            return
        if drill is None:
            show_drills(db, as_json)
        else:
            show_runs(db, drill, limit, as_json)

    @group.command(
        "import",
        help=(
            "Add reports made elsewhere (CI artefacts) to the history. REPORT is a "
            "report.json, a run folder, or a folder of run folders; a run already there "
            "is not added twice."
        ),
    )
    def _import(
        ctx: typer.Context,
        reports: Annotated[
            list[Path], typer.Argument(help="report.json files, run folders or their parent")
        ],
        db: DbOption = None,
    ) -> None:
        parent_db = (ctx.obj or {}).get("db")
        raise typer.Exit(import_reports(db or parent_db, reports))

    app.add_typer(group)
