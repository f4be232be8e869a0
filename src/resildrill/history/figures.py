"""The figures of one run that history keeps, read from a report.json document.

Pure functions over the report dict (``resildrill.report/v1``): no I/O. The store, the
regression gate, the trend and ``compare`` all read a run through :func:`run_figures`, so
"time to recover" means the same thing everywhere: the worst over the drill's faults, and
``None`` when a fault did not recover (as the ``max_time_to_recover`` gate reads it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

__all__ = [
    "COMPLETED_OUTCOMES",
    "METRIC_UNITS",
    "FaultFigures",
    "RunFigures",
    "run_figures",
    "timestamp_of",
]

#: Outcomes whose figures cover the whole drill: only these feed trends and regressions.
COMPLETED_OUTCOMES: Final = ("passed", "failed")

#: Regression metric -> unit (``s``: seconds, compared with ``min_change``).
METRIC_UNITS: Final = {
    "time_to_recover": "s",
    "time_to_detect": "s",
    "outage": "s",
    "degraded": "s",
    "relapses": "count",
    "availability": "ratio",
}


@dataclass(frozen=True)
class FaultFigures:
    """One fault's recovery figures (``faults[].recovery`` of the report)."""

    fault_id: str
    kind: str
    time_to_detect_s: float | None
    time_to_recover_s: float | None
    recovered: bool
    outage_s: float | None
    degraded_s: float | None
    relapses: int
    truncated_by: str | None


@dataclass(frozen=True)
class RunFigures:
    """What history keeps of a run: identity, outcome and the gated figures."""

    run_id: str
    drill: str
    drill_sha256: str | None
    target: str | None
    environment: str | None
    started_at: str
    started_ts: float
    duration_s: float | None
    outcome: str
    exit_code: int
    partial: bool
    time_to_recover_s: float | None
    time_to_detect_s: float | None
    outage_s: float | None
    degraded_s: float | None
    availability: float | None
    relapses: int
    all_recovered: bool
    writes_lost: int | None
    git_commit: str | None
    change_ref: str | None
    tool_version: str | None
    faults: tuple[FaultFigures, ...]

    @property
    def completed(self) -> bool:
        """Whether the drill ran to its end, so its figures can be compared."""
        return self.outcome in COMPLETED_OUTCOMES and not self.partial

    def metric(self, name: str) -> float | None:
        """A regression metric by name (see ``RegressionMetric`` in the drill model)."""
        values: dict[str, float | None] = {
            "time_to_recover": self.time_to_recover_s,
            "time_to_detect": self.time_to_detect_s,
            "outage": self.outage_s,
            "degraded": self.degraded_s,
            "relapses": float(self.relapses),
            "availability": self.availability,
        }
        return values[name]


def timestamp_of(started_at: str) -> float:
    """Unix seconds of an ISO 8601 time (``Z`` or an offset; naive means UTC)."""
    when = datetime.fromisoformat(started_at.strip())
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _fault(entry: dict[str, Any]) -> FaultFigures:
    rec = entry.get("recovery") or {}
    return FaultFigures(
        fault_id=str(entry.get("id")),
        kind=str(entry.get("kind")),
        time_to_detect_s=_num(rec.get("time_to_detect_s")),
        time_to_recover_s=_num(rec.get("time_to_recover_s")),
        # A fault without recovery figures (its injection failed) did not recover.
        recovered=bool(rec.get("recovered", False)),
        outage_s=_num(rec.get("outage_s")),
        degraded_s=_num(rec.get("degraded_s")),
        relapses=int(rec.get("relapses") or 0),
        truncated_by=rec.get("truncated_by"),
    )


def run_figures(report: dict[str, Any]) -> RunFigures:
    """The figures of a report.json document.

    Raises:
        ValueError: the document lacks ``run_id``, ``drill.name`` or a readable
            ``started_at``.
    """
    try:
        run_id = str(report["run_id"])
        drill = report["drill"]
        started_at = str(report["started_at"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a report: missing {exc}") from None
    faults = tuple(_fault(f) for f in report.get("faults") or [])
    all_recovered = all(f.recovered for f in faults)
    ttrs = [f.time_to_recover_s for f in faults]
    worst_ttr = (
        max((t for t in ttrs if t is not None), default=None) if all_recovered and faults else None
    )
    ttds = [f.time_to_detect_s for f in faults if f.time_to_detect_s is not None]
    summary = report.get("summary") or {}
    integrity = report.get("integrity") or {}
    provenance = report.get("provenance") or {}
    target = report.get("target") or {}
    lost = integrity.get("writes_lost")
    return RunFigures(
        run_id=run_id,
        drill=str(drill["name"]),
        drill_sha256=drill.get("sha256"),
        target=target.get("name"),
        environment=target.get("environment"),
        started_at=started_at,
        started_ts=timestamp_of(started_at),
        duration_s=_num(report.get("duration_s")),
        outcome=str(report.get("outcome")),
        exit_code=int(report.get("exit_code", 6)),
        partial=bool(report.get("partial", False)),
        time_to_recover_s=worst_ttr,
        time_to_detect_s=max(ttds, default=None),
        outage_s=_num(summary.get("outage_s")),
        degraded_s=_num(summary.get("degraded_s")),
        availability=_num(summary.get("availability")),
        relapses=sum(f.relapses for f in faults),
        all_recovered=all_recovered,
        writes_lost=int(lost) if isinstance(lost, int) else None,
        git_commit=provenance.get("git_commit"),
        change_ref=provenance.get("change_ref"),
        tool_version=provenance.get("tool_version"),
        faults=faults,
    )
