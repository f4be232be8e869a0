"""Builders of small report.json documents for the history's unit tests."""

from __future__ import annotations

from typing import Any


def make_report(
    run_id: str,
    *,
    started_at: str = "2026-11-01T10:00:00.000Z",
    drill: str = "gateway-loss",
    target: str = "ward-ehr",
    ttr: float | None = 2.0,
    ttd: float | None = 0.2,
    outage: float = 3.0,
    degraded: float = 3.5,
    availability: float = 0.95,
    relapses: int = 0,
    outcome: str = "passed",
    exit_code: int = 0,
    partial: bool = False,
    gates: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A report with one fault; ``ttr=None`` means the fault did not recover."""
    return {
        "schema": "resildrill.report/v1",
        "run_id": run_id,
        "drill": {"name": drill, "file": f"drills/{drill}.yaml", "sha256": "d" * 64},
        "target": {"name": target, "environment": "staging", "sha256": "t" * 64},
        "provenance": {"tool_version": "0.1.0", "git_commit": "abc1234", "operator": "ci"},
        "started_at": started_at,
        "duration_s": 20.0,
        "clock": {"monotonic_t0": 1.0, "wall_t0": 1.0},
        "outcome": outcome,
        "exit_code": exit_code,
        "reason": None,
        "partial": partial,
        "faults": [
            {
                "id": "kill",
                "kind": "process",
                "inject_requested_at_s": 3.0,
                "injected_at_s": 3.0,
                "reverted_at_s": None,
                "recovered_at_s": None if ttr is None else 3.0 + ttr,
                "recovery": {
                    "time_to_detect_s": ttd,
                    "time_to_recover_s": ttr,
                    "recovered": ttr is not None,
                    "outage_s": outage,
                    "degraded_s": degraded,
                    "relapses": relapses,
                    "truncated_by": None,
                },
            }
        ],
        "summary": {"outage_s": outage, "degraded_s": degraded, "availability": availability},
        "load": None,
        "integrity": None,
        "gates": gates
        if gates is not None
        else [{"name": "all_faults_recovered", "limit": True, "value": True, "passed": True}],
        "timeline": {"resolution_s": 0.1, "series": {}, "marks": []},
    }


def day(n: int) -> str:
    """An ISO start time on day ``n`` of November 2026."""
    return f"2026-11-{n:02d}T10:00:00.000Z"
