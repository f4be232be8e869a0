"""Gates: thresholds on a completed drill's results, and the outcome they give.

Pure functions, no I/O. One :class:`GateResult` per configured gate, named exactly as the
:class:`~resildrill.drill.model.Gates` field; a gate set to ``None`` is not configured and
gives no result, nor does ``all_faults_recovered: false`` (the drill turned it off).

* ``all_faults_recovered``: limit ``True``, value whether every fault recovered.
* ``max_time_to_recover``: value the largest ``time_to_recover_s``; a fault that did not
  recover makes the value ``None`` and the gate fail. No faults: value ``None``, passed.
* ``max_time_to_detect``: value the largest ``time_to_detect_s`` among faults that were
  detected (a fault that caused no breach has nothing to detect); none: ``None``, passed.
* ``max_outage`` / ``max_degraded``: ``summary.outage_s`` / ``summary.degraded_s``.
* ``max_relapses``: the sum of relapses over all faults.
* ``min_availability``: ``summary.availability``.

Limits are inclusive (``value <= limit``, ``availability >= limit``), compared with a
tolerance of 1 µs so that a value rounded to milliseconds never fails its own limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from resildrill.analysis.recovery import RecoveryResult, Summary
from resildrill.drill.model import Gates

__all__ = ["GateResult", "evaluate_gates", "outcome_for"]

_TOLERANCE = 1e-6


@dataclass(frozen=True)
class GateResult:
    """One entry of report.json ``gates[]``."""

    name: str
    limit: float | bool | None
    value: float | bool | None
    passed: bool


def _at_most(name: str, limit: float, value: float | None) -> GateResult:
    passed = value is None or value <= limit + _TOLERANCE
    return GateResult(name, limit, value, passed)


def evaluate_gates(
    gates: Gates, faults: list[tuple[str, RecoveryResult]], summary: Summary
) -> list[GateResult]:
    """One result per configured gate, in the order of the ``Gates`` fields."""
    results = [r for _, r in faults]
    out: list[GateResult] = []
    if gates.all_faults_recovered:
        every = all(r.recovered for r in results)
        out.append(GateResult("all_faults_recovered", True, every, every))
    if gates.max_time_to_recover is not None:
        limit = gates.max_time_to_recover
        if any(not r.recovered or r.time_to_recover_s is None for r in results):
            out.append(GateResult("max_time_to_recover", limit, None, False))
        else:
            ttrs = [r.time_to_recover_s for r in results if r.time_to_recover_s is not None]
            out.append(_at_most("max_time_to_recover", limit, max(ttrs, default=None)))
    if gates.max_time_to_detect is not None:
        ttds = [r.time_to_detect_s for r in results if r.time_to_detect_s is not None]
        worst = max(ttds, default=None)
        out.append(_at_most("max_time_to_detect", gates.max_time_to_detect, worst))
    if gates.max_outage is not None:
        out.append(_at_most("max_outage", gates.max_outage, summary.outage_s))
    if gates.max_degraded is not None:
        out.append(_at_most("max_degraded", gates.max_degraded, summary.degraded_s))
    if gates.max_relapses is not None:
        relapses = sum(r.relapses for r in results)
        out.append(
            GateResult("max_relapses", gates.max_relapses, relapses, relapses <= gates.max_relapses)
        )
    if gates.min_availability is not None:
        limit = gates.min_availability
        value = summary.availability
        out.append(GateResult("min_availability", limit, value, value >= limit - _TOLERANCE))
    return out


def outcome_for(gates: list[GateResult]) -> tuple[str, int]:
    """``("passed", 0)`` when every gate passed, else ``("failed", 1)``."""
    return ("passed", 0) if all(g.passed for g in gates) else ("failed", 1)
