"""HL7 delivery, per message: lost, duplicated, late, and the time a backlog took to drain.

Pure functions over the rows of the delivery read-back (``load/delivery.py``): one per message
the load sent, on the run's clock: ``sent_s`` (the sender sent it), ``acked_s`` (its ACK came),
``accepted`` (AA/CA), ``ack``, ``copies`` (how many times the EHR filed it; None: could not
tell), ``filed_s`` (the EHR's first filing), ``readable`` (False: the EHR files nothing to read
back, as for ADT^A08). Definitions (docs/hl7.md):

* **lost**: accepted, read back, never filed. **duplicated**: accepted and filed more than once.
  **rejected**: AE/AR/CE/CR. **unacknowledged**: no ACK within the timeout, or no engine.
  **stored unacknowledged**: not accepted, filed all the same (news, never a loss).
* **delivery delay**: ``filed_s - sent_s`` of an accepted message; per 100 ms bucket of the
  send time, p50, p95 and max, like the report's other series.
* **backlog** at a moment: messages accepted by then and not yet filed by then.
* **a fault's end**: its revert, or its injection for a fault that is not reverted (a kill).
  The **backlog at the end** is the backlog at that moment. The backlog has **drained** when
  the last of those messages has been filed *and* new results reach the ward within their
  usual delay again: when the last message sent after the end that was late was filed, with
  none late after it up to the next fault or the run's end. **Drain time**: from the fault's
  end to then. None (not drained) when new results were still late when the watch ended.
* **usual delay**: ``load.hl7.usual_delay``, else twice the p99 of the baseline's delays, at
  least 250 ms (a few ms on loopback would make every scheduling hiccup a "late" result).
* **the ward nurse's view**: patients whose results (ORU) arrived later than ``late_after``, or
  never arrived although the engine accepted them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["FaultEnd", "analyse_delivery", "usual_delay_s"]

RESOLUTION_S = 0.1
MIN_USUAL_DELAY_S = 0.25
_REJECTING = {"AE", "AR", "CE", "CR"}


@dataclass(frozen=True)
class FaultEnd:
    """Where a fault ended on the run's clock, and until when its drain is watched.

    ``ended`` False: the drill owed the fault a revert that never came (it is still injected),
    so its backlog cannot be said to have drained.
    """

    id: str
    end_s: float
    watch_end_s: float
    ended: bool = True


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of an ascending list (never interpolated: a real message's delay)."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def _delay(row: dict[str, Any]) -> float | None:
    if row.get("filed_s") is None or row.get("sent_s") is None:
        return None
    return float(row["filed_s"]) - float(row["sent_s"])


def usual_delay_s(rows: list[dict[str, Any]], baseline_end_s: float, given: float | None) -> float:
    """The delay counted as usual: the drill's, else from the baseline's delays (messages sent
    *and filed* before the baseline ended: one caught by a fault at its very start is not
    usual)."""
    if given is not None:
        return given
    base = sorted(
        d
        for r in rows
        if r.get("accepted") and (r.get("filed_s") or baseline_end_s) < baseline_end_s
        for d in [_delay(r)]
        if d is not None
    )
    if not base:
        return MIN_USUAL_DELAY_S
    return max(MIN_USUAL_DELAY_S, 2 * _quantile(base, 0.99))


def _series(rows: list[dict[str, Any]], n: int) -> dict[str, list[float | None]]:
    """Per bucket of the send time: delay p50, p95, max (ms); backlog at the bucket's end."""
    by: list[list[float]] = [[] for _ in range(n)]
    for r in rows:
        d = _delay(r)
        if r.get("accepted") and d is not None:
            i = math.floor(float(r["sent_s"]) / RESOLUTION_S)
            if 0 <= i < n:
                by[i].append(d)
    p50: list[float | None] = []
    p95: list[float | None] = []
    top: list[float | None] = []
    for values in by:
        values.sort()
        p50.append(round(_quantile(values, 0.5) * 1000, 1) if values else None)
        p95.append(round(_quantile(values, 0.95) * 1000, 1) if values else None)
        top.append(round(values[-1] * 1000, 1) if values else None)
    # backlog: +1 when a message is accepted, -1 when it is filed (never, if lost)
    change = [0] * (n + 1)
    for r in rows:
        if not r.get("accepted") or r.get("acked_s") is None:
            continue
        a = max(0, math.floor(float(r["acked_s"]) / RESOLUTION_S))
        if a < n:
            change[a] += 1
        if r.get("filed_s") is not None:
            f = max(a, math.floor(float(r["filed_s"]) / RESOLUTION_S))
            change[min(f, n)] -= 1
    backlog: list[float | None] = []
    level = 0
    for i in range(n):
        level += change[i]
        backlog.append(level)
    return {"delay_p50_ms": p50, "delay_p95_ms": p95, "delay_max_ms": top, "backlog": backlog}


def _drain(rows: list[dict[str, Any]], fault: FaultEnd, usual_s: float) -> dict[str, Any]:
    """A fault's backlog at its end and when it drained (see the module's definitions).

    Not drained (None) when the fault never ended, when a message of the backlog was never
    filed (lost, or the read-back could not tell: a backlog with a hole in it has not drained,
    whatever came after), or when new results were still late, or never filed, when the watch
    ended.
    """
    end = fault.end_s
    accepted = [r for r in rows if r.get("accepted") and r.get("acked_s") is not None]
    backlog = [
        r
        for r in accepted
        if float(r["acked_s"]) <= end and (r.get("filed_s") is None or float(r["filed_s"]) > end)
    ]
    filed = [float(r["filed_s"]) for r in backlog if r.get("filed_s") is not None]
    unfiled = len(backlog) - len(filed)

    def late(r: dict[str, Any]) -> bool:
        delay = _delay(r)
        return delay is None or delay > usual_s  # never filed: never on time

    after = sorted(
        (r for r in accepted if r.get("sent_s") is not None and end <= float(r["sent_s"])),
        key=lambda r: float(r["sent_s"]),
    )
    after = [r for r in after if float(r["sent_s"]) < fault.watch_end_s]
    last_late = max((i for i, r in enumerate(after) if late(r)), default=-1)
    timely = after[last_late + 1] if last_late + 1 < len(after) else None
    out: dict[str, Any] = {
        "end_s": round(end, 4),
        "backlog_at_end": len(backlog),
        "lost_from_backlog": sum(1 for r in backlog if r.get("copies") == 0),
        "never_filed_from_backlog": unfiled,
        "last_backlog_filed_at_s": round(max(filed), 4) if filed else None,
        "timely_again_at_s": round(float(timely["filed_s"]), 4) if timely else None,
        "drained_at_s": None,
        "drain_s": None,
    }
    if not fault.ended or unfiled:
        return out
    if not backlog and last_late < 0:
        out["drained_at_s"], out["drain_s"] = round(end, 4), 0.0
        return out
    if after and timely is None:
        return out  # new results were still late (or never came) when the watch ended
    late_filed = [r.get("filed_s") for r in after[: last_late + 1] if late(r)]
    if any(f is None for f in late_filed):
        # a result sent after the end never arrived, yet later ones did: a hole, not a drain
        return out
    # the last result that was late reached the ward then; every later one came on time
    drained = max([*filed, *(float(f) for f in late_filed if f is not None)], default=end)
    out["drained_at_s"] = round(drained, 4)
    out["drain_s"] = round(max(0.0, drained - end), 4)
    return out


def analyse_delivery(
    rows: list[dict[str, Any]],
    *,
    baseline_end_s: float,
    faults: list[FaultEnd],
    n_buckets: int,
    late_after_s: float,
    usual_delay: float | None = None,
) -> tuple[dict[str, Any], dict[str, list[float | None]]]:
    """report.json ``delivery`` and its timeline series (name -> one value per bucket)."""
    accepted = [r for r in rows if r.get("accepted")]
    readable = [r for r in accepted if r.get("readable", True)]
    lost = [r for r in readable if r.get("copies") == 0]
    duplicated = [r for r in readable if (r.get("copies") or 0) > 1]
    unverifiable = [r for r in readable if r.get("copies") is None or r.get("sent_s") is None]
    delays = sorted(d for r in readable for d in [_delay(r)] if d is not None)
    usual = usual_delay_s(readable, baseline_end_s, usual_delay)
    results = [r for r in readable if str(r.get("type", "")).startswith("oru")]
    late_patients = {r.get("patient") for r in results if (_delay(r) or 0.0) > late_after_s}
    lost_patients = {r.get("patient") for r in results if r.get("copies") == 0}
    by_fault = {f.id: _drain(readable, f, usual) for f in faults}
    drains = [d["drain_s"] for d in by_fault.values()]
    examples = [
        {
            "control_id": r.get("control_id"),
            "type": r.get("type"),
            "problem": "lost" if r.get("copies") == 0 else "duplicated",
            "copies": r.get("copies"),
            "sent_s": r.get("sent_s"),
        }
        for r in [*lost, *duplicated][:20]
    ]
    report = {
        "messages_sent": len(rows),
        "accepted": len(accepted),
        "rejected": sum(1 for r in rows if r.get("ack") in _REJECTING),
        "unacknowledged": sum(1 for r in rows if r.get("ack") is None),
        "not_read_back": len(accepted) - len(readable),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "extra_copies": sum((r.get("copies") or 0) - 1 for r in duplicated),
        "unverifiable": len(unverifiable),
        "stored_unacknowledged": sum(
            1 for r in rows if not r.get("accepted") and (r.get("copies") or 0) > 0
        ),
        "delay_ms": {
            "p50": round(_quantile(delays, 0.5) * 1000, 1) if delays else None,
            "p95": round(_quantile(delays, 0.95) * 1000, 1) if delays else None,
            "max": round(delays[-1] * 1000, 1) if delays else None,
        },
        "usual_delay_s": round(usual, 4),
        "max_backlog_drain_s": None if any(d is None for d in drains) else max(drains, default=0.0),
        "by_fault": by_fault,
        "ward": {
            "late_after_s": late_after_s,
            "patients_with_results": len({r.get("patient") for r in results}),
            "patients_late": len(late_patients - lost_patients),
            "patients_never_arrived": len(lost_patients),
        },
        "examples": examples,
    }
    return report, _series(readable, n_buckets)
