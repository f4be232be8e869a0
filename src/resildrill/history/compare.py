"""Two runs side by side, figure by figure, with the change and whether it is better.

Pure functions over report.json documents (or the history's stored copies): no I/O.
Sections: the run as a whole, each fault (matched by id), each workflow of the load,
each probe and each gate. A figure present in only one run shows ``None`` on the other
side. ``better``/``worse`` follow each figure's direction (less outage is better, more
availability is better); figures without a direction (requests sent) say ``changed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from resildrill.history.figures import run_figures

__all__ = ["Comparison", "Row", "compare_reports"]

Direction = Literal["lower", "higher", "none"]
Value = float | int | bool | str | None


@dataclass(frozen=True)
class Row:
    """One figure of the comparison."""

    section: str
    figure: str
    a: Value
    b: Value
    delta: float | None
    change_pct: float | None
    verdict: Literal["better", "worse", "same", "changed", ""]
    unit: str = ""


@dataclass(frozen=True)
class Comparison:
    """The two runs' identities and every compared figure."""

    a: dict[str, Any]
    b: dict[str, Any]
    rows: list[Row]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``compare --json``)."""
        return {"a": self.a, "b": self.b, "rows": [asdict(r) for r in self.rows]}


def _is_num(x: Value) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _row(section: str, figure: str, a: Value, b: Value, direction: Direction, unit: str) -> Row:
    if _is_num(a) and _is_num(b):
        assert isinstance(a, int | float) and isinstance(b, int | float)
        delta = round(float(b) - float(a), 6)
        pct = round(delta / abs(a) * 100, 1) if a else None
        # Times are measured in 100 ms buckets: a change under half a bucket is rounding.
        if abs(delta) < (0.05 if unit == "s" else 1e-9):
            verdict: Literal["better", "worse", "same", "changed", ""] = "same"
        elif direction == "none":
            verdict = "changed"
        else:
            verdict = "better" if (delta < 0) == (direction == "lower") else "worse"
        return Row(section, figure, a, b, delta, pct, verdict, unit)
    if a == b:
        return Row(section, figure, a, b, None, None, "same", unit)
    if isinstance(a, bool) and isinstance(b, bool) and direction != "none":
        good = b if direction == "higher" else not b
        return Row(section, figure, a, b, None, None, "better" if good else "worse", unit)
    if direction == "lower" and (a is None) != (b is None) and section == "fault":
        # A time to recover that disappears means the fault stopped recovering.
        return Row(section, figure, a, b, None, None, "worse" if b is None else "better", unit)
    return Row(section, figure, a, b, None, None, "changed", unit)


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _identity(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": report.get("run_id"),
        "drill": _get(report, "drill", "name"),
        "started_at": report.get("started_at"),
        "outcome": report.get("outcome"),
        "git_commit": _get(report, "provenance", "git_commit"),
    }


_OVERALL: list[tuple[str, Callable[[dict[str, Any]], Value], Direction, str]] = [
    ("exit_code", lambda r: r.get("exit_code"), "lower", ""),
    ("duration_s", lambda r: r.get("duration_s"), "none", "s"),
    ("outage_s", lambda r: _get(r, "summary", "outage_s"), "lower", "s"),
    ("degraded_s", lambda r: _get(r, "summary", "degraded_s"), "lower", "s"),
    ("availability", lambda r: _get(r, "summary", "availability"), "higher", "ratio"),
    ("load.requests", lambda r: _get(r, "load", "requests"), "none", ""),
    ("load.failures", lambda r: _get(r, "load", "failures"), "lower", ""),
    (
        "integrity.writes_acknowledged",
        lambda r: _get(r, "integrity", "writes_acknowledged"),
        "none",
        "",
    ),
    ("integrity.writes_lost", lambda r: _get(r, "integrity", "writes_lost"), "lower", ""),
    (
        "integrity.writes_duplicated",
        lambda r: _get(r, "integrity", "writes_duplicated"),
        "lower",
        "",
    ),
    (
        "integrity.writes_unverifiable",
        lambda r: _get(r, "integrity", "writes_unverifiable"),
        "lower",
        "",
    ),
]

_FAULT: list[tuple[str, Direction, str]] = [
    ("time_to_detect_s", "lower", "s"),
    ("time_to_recover_s", "lower", "s"),
    ("recovered", "higher", ""),
    ("outage_s", "lower", "s"),
    ("degraded_s", "lower", "s"),
    ("relapses", "lower", ""),
]

_WORKFLOW: list[tuple[str, Direction, str]] = [
    ("requests", "none", ""),
    ("failures", "lower", ""),
    ("failed_actions", "lower", ""),
    ("p95_ms", "lower", "ms"),
    ("wait_beyond_slo_s", "lower", "s"),
]


def _keyed(items: Any, key: str) -> dict[str, dict[str, Any]]:
    if not isinstance(items, list):
        return {}
    return {str(i.get(key)): i for i in items if isinstance(i, dict)}


def _union(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return [*a, *(k for k in b if k not in a)]


def compare_reports(a: dict[str, Any], b: dict[str, Any]) -> Comparison:
    """Compare run ``a`` (before) with run ``b`` (after); deltas are ``b - a``."""
    rows = [_row("run", "outcome", a.get("outcome"), b.get("outcome"), "none", "")]
    fa, fb = run_figures(a), run_figures(b)
    rows.append(
        _row(
            "run",
            "time_to_recover_s (worst)",
            fa.time_to_recover_s,
            fb.time_to_recover_s,
            "lower",
            "s",
        )
    )
    rows.append(
        _row(
            "run",
            "time_to_detect_s (worst)",
            fa.time_to_detect_s,
            fb.time_to_detect_s,
            "lower",
            "s",
        )
    )
    rows.append(_row("run", "relapses", fa.relapses, fb.relapses, "lower", ""))
    rows += [_row("run", name, get(a), get(b), d, unit) for name, get, d, unit in _OVERALL]
    faults_a, faults_b = _keyed(a.get("faults"), "id"), _keyed(b.get("faults"), "id")
    for fid in _union(faults_a, faults_b):
        ra = _get(faults_a.get(fid), "recovery") or {}
        rb = _get(faults_b.get(fid), "recovery") or {}
        rows += [
            _row("fault", f"{fid}.{name}", ra.get(name), rb.get(name), d, unit)
            for name, d, unit in _FAULT
        ]
    wa = _get(a, "load", "by_workflow") or {}
    wb = _get(b, "load", "by_workflow") or {}
    for wf in _union(wa, wb):
        rows += [
            _row("workflow", f"{wf}.{name}", _get(wa, wf, name), _get(wb, wf, name), d, unit)
            for name, d, unit in _WORKFLOW
        ]
    pa, pb = _keyed(a.get("probes"), "name"), _keyed(b.get("probes"), "name")
    for probe in _union(pa, pb):
        rows.append(
            _row(
                "probe",
                f"{probe}.availability",
                _get(pa, probe, "availability"),
                _get(pb, probe, "availability"),
                "higher",
                "ratio",
            )
        )
    ga, gb = _keyed(a.get("gates"), "name"), _keyed(b.get("gates"), "name")
    for gate in _union(ga, gb):
        rows.append(
            _row(
                "gate",
                f"{gate}.value",
                _get(ga, gate, "value"),
                _get(gb, gate, "value"),
                "none",
                "",
            )
        )
        rows.append(
            _row(
                "gate",
                f"{gate}.passed",
                _get(ga, gate, "passed"),
                _get(gb, gate, "passed"),
                "higher",
                "",
            )
        )
    return Comparison(_identity(a), _identity(b), rows)
