"""What a run does with the history: read it before writing report.json, append after.

:func:`apply_history` adds the ``trend`` field (the same drill's previous runs) and the
``regression.<metric>`` gates to a freshly built report, updating outcome, exit code and
reason under DESIGN.md's precedence (a failed regression only turns 0 into 1).
:func:`record_run` appends the finished run. Neither may break a run: a history that
cannot be read or written becomes a warning (and a failed regression gate, when one was
asked for, because a gate that silently passes is worse than one that says why it failed).
"""

from __future__ import annotations

import copy
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

from resildrill.drill.model import RegressionGate
from resildrill.errors import ResildrillError
from resildrill.history.figures import run_figures
from resildrill.history.regression import regression_gates
from resildrill.history.store import HistoryStore, StoredRun, default_path
from resildrill.outcome import decide

__all__ = ["TREND_RUNS", "apply_history", "record_run", "trend_entry"]

#: How many previous runs the ``trend`` field lists.
TREND_RUNS = 20


def trend_entry(run: StoredRun) -> dict[str, Any]:
    """One item of report.json ``trend[]``."""
    f = run.figures
    return {
        "run_id": f.run_id,
        "started_at": f.started_at,
        "time_to_recover_s": f.time_to_recover_s,
        "time_to_detect_s": f.time_to_detect_s,
        "outage_s": f.outage_s,
        "degraded_s": f.degraded_s,
        "availability": f.availability,
        "outcome": f.outcome,
        "git_commit": f.git_commit,
    }


def _warn(report: dict[str, Any], message: str) -> None:
    print(f"resildrill: warning: {message}", file=sys.stderr)
    report.setdefault("warnings", []).append(message)


def apply_history(
    report: dict[str, Any],
    regression: RegressionGate | None,
    *,
    db: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """A copy of ``report`` with ``trend`` and the regression gates, judged on the history.

    Only runs started before this one count, so the verdict is the same when it is
    computed again later. Runs that did not complete get a trend but no regression gate.
    """
    out = copy.deepcopy(report)
    path = Path(db) if db is not None else default_path()
    current = run_figures(out)
    try:
        if path.exists():
            with HistoryStore(path) as store:
                trend = store.previous(
                    current.drill,
                    current.started_ts,
                    limit=TREND_RUNS,
                    completed=False,
                    target=current.target,
                )[::-1]
                limit = regression.last_n if regression else 0
                previous = store.previous(
                    current.drill, current.started_ts, limit=limit, target=current.target
                )
        else:
            trend, previous = [], []
    # ValueError/KeyError: a stored report that no longer reads (hand-edited, truncated).
    except (ResildrillError, sqlite3.Error, OSError, ValueError, KeyError) as exc:
        _warn(out, f"run history {path} not read: {exc}")
        if regression is not None and current.completed:
            out["gates"] = [
                *out.get("gates", []),
                {
                    "name": "regression",
                    "limit": None,
                    "value": None,
                    "passed": False,
                    "reason": f"the run history {path} could not be read: {exc}",
                },
            ]
            _fail(out, ["regression"])
        return out
    out["trend"] = [trend_entry(r) for r in trend]
    if regression is None or not current.completed:
        return out
    gates = regression_gates(regression, current, [r.figures for r in previous])
    out["gates"] = [*out.get("gates", []), *gates]
    _fail(out, [g["name"] for g in gates if not g["passed"]])
    return out


def _fail(report: dict[str, Any], failed: list[str]) -> None:
    """Decide the run's outcome again now that the regression gates are in (outcome.py),
    from the runner's own status and every gate: never by rewriting the reason's text."""
    if not failed:
        return
    verdict = decide(
        run_status=str(report.get("run_status", "completed")),
        run_reason=report.get("run_reason"),
        still_injected=[
            f"{f['id']} (undo with: {f['still_injected']})"
            for f in report.get("faults", [])
            if f.get("still_injected")
        ],
        failed_gates=[g["name"] for g in report.get("gates", []) if not g.get("passed")],
        partial=bool(report.get("partial")),
    )
    report["outcome"] = verdict.outcome.name
    report["exit_code"] = verdict.exit_code
    report["reason"] = verdict.reason


def record_run(
    report: dict[str, Any],
    report_path: str | os.PathLike[str] | None,
    *,
    db: str | os.PathLike[str] | None = None,
) -> str | None:
    """Append a finished run to the history; returns "added"/"unchanged"/"updated".

    Never raises for a history problem: it prints a warning and returns None, because the
    run's figures and exit code are already decided and written.
    """
    path = Path(db) if db is not None else default_path()
    try:
        with HistoryStore(path) as store:
            return store.add(report, report_path=report_path, source="run")
    except (ResildrillError, sqlite3.Error, OSError) as exc:
        print(f"resildrill: warning: run not added to the history {path}: {exc}", file=sys.stderr)
        return None
