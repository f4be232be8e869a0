"""Wording and number formats shared by the HTML, JUnit and Markdown renderers.

Owns how a figure reads (``2.3 s``, ``99.95%``, ``1,204``), what each gate and outcome is
called in plain words, and the one-line reasons a failed gate or fault carries, so the
three renderers never disagree. Formatting only: nothing here derives a new figure.
"""

from __future__ import annotations

import json
from typing import Any

from resildrill.report.model import DrillReport, Fault, Gate, Scalar

__all__ = [
    "OUTCOME_TEXT",
    "clock",
    "fault_reason",
    "gate_label",
    "gate_limit",
    "gate_reason",
    "gate_value",
    "num",
    "pct",
    "secs",
    "verdict",
]

DASH = "—"

#: Headline per outcome: a short word, and the sentence a non-engineer reads first.
OUTCOME_TEXT: dict[str, tuple[str, str]] = {
    "passed": ("PASSED", "The drill completed and every gate held."),
    "failed": ("FAILED", "The drill completed, and at least one gate did not hold."),
    "aborted": ("ABORTED", "The drill was stopped early; every fault was reverted."),
    "not_ready": (
        "NOT READY",
        "The system was not healthy before the drill, so no fault was injected.",
    ),
    "error": ("TOOL ERROR", "resildrill could not complete the drill; the figures are partial."),
}

_GATES: dict[str, tuple[str, str | None]] = {
    "all_faults_recovered": ("Every fault recovered", None),
    "max_time_to_recover": ("Time to recover, worst fault", "s"),
    "max_time_to_detect": ("Time to detect, worst fault", "s"),
    "max_outage": ("Outage (clinical entry point down)", "s"),
    "max_degraded": ("Degraded service (any SLO breached)", "s"),
    "max_relapses": ("Relapses after recovery", None),
    "min_availability": ("Availability", "ratio"),
    "max_writes_lost": ("Acknowledged writes lost", None),
    "max_writes_duplicated": ("Acknowledged writes duplicated", None),
    "max_failed_actions": ("Failed clinical actions", None),
    "max_wait_beyond_slo": ("Time clinicians waited beyond the SLO, worst workflow", "s"),
    "max_messages_lost": ("HL7 messages accepted but never filed", None),
    "max_messages_duplicated": ("HL7 messages filed more than once", None),
    "max_delivery_delay": ("HL7 delivery delay, slowest message", "s"),
    "max_backlog_drain": ("HL7 backlog drain time, worst fault", "s"),
    "regression": ("No regression against this drill's recent runs", None),
}


def secs(value: float | None) -> str:
    """Seconds as people read them: ``2.3 s``, ``4 min 05.2 s``, ``1 h 02 min``."""
    if value is None:
        return DASH
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        minutes, rest = divmod(value, 60)
        return f"{int(minutes)} min {rest:04.1f} s"
    hours, rest = divmod(value, 3600)
    return f"{int(hours)} h {int(rest // 60):02d} min"


def ms(value: float | None) -> str:
    """Milliseconds, switching to seconds past one second: ``12.3 ms``, ``4.5 s``."""
    if value is None:
        return DASH
    return f"{value:.1f} ms" if value < 1000 else secs(value / 1000)


def pct(value: float | None, digits: int = 2) -> str:
    """A ratio as a percentage; 0.99953 stays 99.95%, never rounded up to 100%."""
    if value is None:
        return DASH
    scaled = value * 100
    factor = 10**digits
    shown = int(scaled * factor) / factor  # truncate: availability must not round up
    return f"{shown:.{digits}f}%"


def num(value: float | int | None) -> str:
    """A count with thousands separators."""
    if value is None:
        return DASH
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def clock(value: float | None, span: float = 0.0) -> str:
    """A time on the run's clock: ``+1:04.2`` (or ``+1:02:03`` for long drills)."""
    if value is None:
        return DASH
    if span >= 3600 or value >= 3600:
        hours, rest = divmod(int(value), 3600)
        return f"+{hours}:{rest // 60:02d}:{rest % 60:02d}"
    minutes, seconds = divmod(value, 60)
    return f"+{int(minutes)}:{seconds:04.1f}"


def _gate_unit(gate: Gate) -> str | None:
    if gate.unit is not None:
        return gate.unit
    base = gate.name.split(".", 1)[0]
    return _GATES.get(base, ("", None))[1]


def gate_label(gate: Gate) -> str:
    """A gate's plain-words name; ``max_failed_actions.nurse_obs`` names its workflow."""
    base, _, qualifier = gate.name.partition(".")
    label = _GATES.get(base, (gate.name.replace("_", " "), None))[0]
    return f"{label} ({qualifier})" if qualifier else label


def _scalar(value: Scalar | dict[str, Any] | list[Any] | None, unit: str | None) -> str:
    if value is None:
        return DASH
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if unit == "s":
        return secs(float(value))
    if unit == "ratio":
        return pct(float(value))
    if unit:
        return f"{num(value)} {unit}"
    return num(value)


def gate_value(gate: Gate) -> str:
    """The measured value of a gate, in its unit."""
    return _scalar(gate.value, _gate_unit(gate))


def gate_limit(gate: Gate) -> str:
    """The gate's limit with its direction: ``≤ 10.0 s``, ``≥ 99.00%``, ``yes``."""
    text = _scalar(gate.limit, _gate_unit(gate))
    if not isinstance(gate.limit, int | float) or isinstance(gate.limit, bool):
        return text
    return ("≥ " if gate.name.startswith("min_") else "≤ ") + text


def gate_reason(gate: Gate) -> str:
    """Why a gate failed, in one line: the producer's reason, else measured vs limit."""
    if gate.reason:
        return gate.reason
    if gate.value is None:
        return f"{gate_label(gate)}: no value could be measured (limit {gate_limit(gate)})"
    return f"{gate_label(gate)}: measured {gate_value(gate)}, limit {gate_limit(gate)}"


def fault_reason(fault: Fault) -> str:
    """Why a fault counts as failed, in one line, from its own figures."""
    rec = fault.recovery
    if fault.injected_at_s is None or rec is None:
        why = f": {fault.error}" if fault.error else ""
        verb = "was not injected" if fault.injected_at_s is None else "could not be analysed"
        return f"{fault.id} {verb}{why}"
    parts = [f"{fault.id} did not recover before its watch ended"]
    if rec.truncated_by:
        parts.append(f"(watch cut short by {rec.truncated_by})")
    parts.append(
        f"; time to detect {secs(rec.time_to_detect_s)}, outage {secs(rec.outage_s)}, "
        f"degraded {secs(rec.degraded_s)}, relapses {rec.relapses}"
    )
    return " ".join(parts[:-1]) + parts[-1]


def verdict(report: DrillReport) -> tuple[str, str]:
    """The headline word and sentence for the report's outcome."""
    return OUTCOME_TEXT.get(report.outcome, (report.outcome.upper(), ""))
