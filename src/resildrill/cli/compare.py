"""The ``resildrill compare A B`` command: what changed between two runs, figure by figure.

A and B are report.json files, run folders, or run ids (or unique prefixes) from the
history. Prints one line per figure with both values, the change ``B - A`` and whether it
is better or worse; ``--json`` for machines. Exit 0 (a comparison is not a gate: the
regression gate in a drill is).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from resildrill.cli.history import DbOption, table
from resildrill.errors import InvalidInput

__all__ = ["load_run", "register"]


def load_run(ref: str, db: Path | None) -> dict[str, Any]:
    """A run's report: from a file or folder when ``ref`` is a path, else from the history."""
    from resildrill.history import HistoryStore, default_path
    from resildrill.report.model import load_report

    path = Path(ref)
    if path.exists():
        return load_report(path).model_dump(mode="json", by_alias=True)
    store_path = db or default_path()
    if store_path.exists():
        with HistoryStore(store_path) as store:
            run = store.find(ref)
            if run is not None:
                report = store.report(run.run_id)
                assert report is not None
                return report
    raise InvalidInput(
        f"{ref}: neither a report.json, a run folder, nor a run id in the history {store_path}"
    )


def _v(x: Any, unit: str) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool) or not isinstance(x, int | float):
        return str(x)
    if unit == "ratio":
        return f"{x * 100:.3f}%"
    return f"{x:g}{unit if unit in ('s', 'ms') else ''}"


def render_text(comparison: Any) -> str:
    """The comparison as aligned text."""
    a, b = comparison.a, comparison.b
    lines = [
        f"A: {a['run_id']}  ({a['started_at']}, {a['outcome']}, commit {a['git_commit'] or '-'})",
        f"B: {b['run_id']}  ({b['started_at']}, {b['outcome']}, commit {b['git_commit'] or '-'})",
    ]
    if a["drill"] != b["drill"]:
        lines.append(f"note: different drills ({a['drill']} vs {b['drill']})")
    rows = []
    for r in comparison.rows:
        if r.a is None and r.b is None:
            continue
        delta = ""
        if r.delta is not None and r.verdict != "same":
            delta = f"{r.delta:+g}" + (
                f" ({r.change_pct:+.0f}%)" if r.change_pct is not None else ""
            )
        rows.append([r.section, r.figure, _v(r.a, r.unit), _v(r.b, r.unit), delta, r.verdict])
    lines.append("")
    lines.append(table(["section", "figure", "A", "B", "B - A", ""], rows))
    worse = [r.figure for r in comparison.rows if r.verdict == "worse"]
    better = [r.figure for r in comparison.rows if r.verdict == "better"]
    lines.append("")
    lines.append(f"{len(better)} figure(s) better, {len(worse)} worse")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command(
        "compare",
        help=(
            "What changed between two runs, figure by figure (B - A). A and B are report.json "
            "files, run folders, or run ids from the history (a unique prefix is enough)."
        ),
    )
    def _compare(
        a: Annotated[str, typer.Argument(help="the earlier run")],
        b: Annotated[str, typer.Argument(help="the later run")],
        db: DbOption = None,
        as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
    ) -> None:
        from resildrill.history import compare_reports

        comparison = compare_reports(load_run(a, db), load_run(b, db))
        if as_json:
            typer.echo(json.dumps(comparison.as_dict(), indent=2))
        else:
            typer.echo(render_text(comparison))
