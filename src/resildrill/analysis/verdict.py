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
* ``max_writes_lost`` / ``max_writes_duplicated``: report.json ``integrity``. When the
  read-back could not verify every write (``writes_unverifiable`` > 0) or did not run
  (no ``integrity``), the gate fails and says so: a write nobody could read back is never
  counted as safe.
* ``max_failed_actions``: one result per workflow, ``max_failed_actions.<workflow>``, from
  ``load.by_workflow.<workflow>.failed_actions``: every mapped workflow (one the load did
  not play failed 0 actions), or for a single number every workflow the load played.
  No load figures: the gate fails, value ``None``.
* ``max_wait_beyond_slo``: the largest ``load.by_workflow.*.wait_beyond_slo_s``; no
  workflow with a measured wait: value ``None``, failed.

* ``max_messages_lost`` / ``max_messages_duplicated``: report.json ``delivery`` (HL7 messages
  the engine accepted, read back from the EHR). Unverifiable messages or no read-back fail
  the gate, as for writes.
* ``max_delivery_delay``: the slowest accepted message's delay (``delivery.delay_ms.max``);
  a lost message has no delay and is the business of ``max_messages_lost``.
* ``max_backlog_drain``: the longest drain time of any fault's backlog
  (``delivery.max_backlog_drain_s``); a backlog that never drained fails it.

Failed results may carry a ``reason`` (the sentence renderers show). Limits are inclusive
(``value <= limit``, ``availability >= limit``), compared with a tolerance of 1 µs so
that a value rounded to milliseconds never fails its own limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
    reason: str | None = None


def _at_most(name: str, limit: float, value: float | None) -> GateResult:
    passed = value is None or value <= limit + _TOLERANCE
    return GateResult(name, limit, value, passed)


def _writes_gate(
    name: str, limit: int, figure: str, integrity: Mapping[str, Any] | None
) -> GateResult:
    what = figure.removeprefix("writes_") + " writes"
    if integrity is None:
        why = f"writes were not read back (no integrity check ran), so {what} cannot be ruled out"
        return GateResult(name, limit, None, False, why)
    value = int(integrity.get(figure) or 0)
    unverifiable = int(integrity.get("writes_unverifiable") or 0)
    if unverifiable:
        acknowledged = int(integrity.get("writes_acknowledged") or 0)
        why = (
            f"{unverifiable} of {acknowledged} acknowledged writes could not be read back, "
            f"so {what} cannot be ruled out ({value} found, limit {limit})"
        )
        return GateResult(name, limit, value, False, why)
    return GateResult(name, limit, value, value <= limit)


def _failed_actions_gates(
    limit: int | dict[str, int], load: Mapping[str, Any] | None
) -> list[GateResult]:
    by: Mapping[str, Any] | None = load.get("by_workflow") if load is not None else None
    if isinstance(limit, dict):
        limits = dict(sorted(limit.items()))
    elif by:
        limits = {wf: limit for wf in sorted(by)}
    else:
        why = "no clinician actions were measured (no load figures)"
        return [GateResult("max_failed_actions", limit, None, False, why)]
    out = []
    for wf, most in limits.items():
        name = f"max_failed_actions.{wf}"
        if by is None:
            why = f"no clinician load figures, so failed actions of {wf} are unknown"
            out.append(GateResult(name, most, None, False, why))
            continue
        figures = by.get(wf)
        value = 0 if figures is None else figures.get("failed_actions")  # not played: none
        if value is None:
            why = f"failed actions of {wf} were not measured"
            out.append(GateResult(name, most, None, False, why))
        else:
            out.append(GateResult(name, most, int(value), int(value) <= most))
    return out


def _wait_gate(limit: float, load: Mapping[str, Any] | None) -> GateResult:
    by: Mapping[str, Any] = (load or {}).get("by_workflow") or {}
    waits = {
        wf: float(f["wait_beyond_slo_s"])
        for wf, f in by.items()
        if f.get("wait_beyond_slo_s") is not None
    }
    if not waits:
        why = "no workflow's wait beyond its SLO was measured (no load figures for them)"
        return GateResult("max_wait_beyond_slo", limit, None, False, why)
    worst = max(sorted(waits), key=lambda wf: waits[wf])
    result = _at_most("max_wait_beyond_slo", limit, waits[worst])
    if result.passed:
        return result
    why = f"clinicians of {worst} waited {waits[worst]:g} s beyond the SLO (limit {limit:g} s)"
    return GateResult(result.name, limit, waits[worst], False, why)


def _messages_gate(
    name: str, limit: int, figure: str, delivery: Mapping[str, Any] | None
) -> GateResult:
    what = f"{figure} messages"
    if delivery is None:
        why = f"HL7 messages were not read back from the EHR, so {what} cannot be ruled out"
        return GateResult(name, limit, None, False, why)
    value = int(delivery.get(figure) or 0)
    unverifiable = int(delivery.get("unverifiable") or 0)
    if unverifiable:
        why = (
            f"{unverifiable} of {delivery.get('accepted')} accepted messages could not be read "
            f"back, so {what} cannot be ruled out ({value} found, limit {limit})"
        )
        return GateResult(name, limit, value, False, why)
    return GateResult(name, limit, value, value <= limit)


def _delivery_gates(gates: Gates, delivery: Mapping[str, Any] | None) -> list[GateResult]:
    out: list[GateResult] = []
    if gates.max_messages_lost is not None:
        out.append(_messages_gate("max_messages_lost", gates.max_messages_lost, "lost", delivery))
    if gates.max_messages_duplicated is not None:
        most = gates.max_messages_duplicated
        out.append(_messages_gate("max_messages_duplicated", most, "duplicated", delivery))
    if gates.max_delivery_delay is not None:
        limit = gates.max_delivery_delay
        worst_ms = ((delivery or {}).get("delay_ms") or {}).get("max")
        if worst_ms is None:
            why = "no accepted HL7 message was read back as filed, so no delay was measured"
            out.append(GateResult("max_delivery_delay", limit, None, False, why))
        else:
            out.append(_at_most("max_delivery_delay", limit, round(worst_ms / 1000, 4)))
    if gates.max_backlog_drain is not None:
        limit = gates.max_backlog_drain
        if delivery is None:
            why = "HL7 messages were not read back from the EHR, so no drain time was measured"
            out.append(GateResult("max_backlog_drain", limit, None, False, why))
        else:
            value = delivery.get("max_backlog_drain_s")
            result = _at_most("max_backlog_drain", limit, value)
            if value is None:
                undrained = [
                    f for f, d in (delivery.get("by_fault") or {}).items() if d["drain_s"] is None
                ]
                why = f"the backlog of {', '.join(undrained)} had not drained when the run ended"
                result = GateResult("max_backlog_drain", limit, None, False, why)
            out.append(result)
    return out


def evaluate_gates(
    gates: Gates,
    faults: list[tuple[str, RecoveryResult]],
    summary: Summary,
    *,
    load: Mapping[str, Any] | None = None,
    integrity: Mapping[str, Any] | None = None,
    delivery: Mapping[str, Any] | None = None,
) -> list[GateResult]:
    """One result per configured gate, in the order of the ``Gates`` fields.

    ``load``, ``integrity`` and ``delivery`` are report.json's ``load`` (with
    ``wait_beyond_slo_s`` per workflow), ``integrity`` and ``delivery``; None when the run
    has none.
    """
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
    if gates.max_writes_lost is not None:
        out.append(_writes_gate("max_writes_lost", gates.max_writes_lost, "writes_lost", integrity))
    if gates.max_writes_duplicated is not None:
        most = gates.max_writes_duplicated
        out.append(_writes_gate("max_writes_duplicated", most, "writes_duplicated", integrity))
    if gates.max_failed_actions is not None:
        out += _failed_actions_gates(gates.max_failed_actions, load)
    if gates.max_wait_beyond_slo is not None:
        out.append(_wait_gate(gates.max_wait_beyond_slo, load))
    out += _delivery_gates(gates, delivery)
    return out


def outcome_for(gates: list[GateResult]) -> tuple[str, int]:
    """``("passed", 0)`` when every gate passed, else ``("failed", 1)``."""
    return ("passed", 0) if all(g.passed for g in gates) else ("failed", 1)
