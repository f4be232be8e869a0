"""Analysis: SLO breaches, recovery per fault, summary and gates, as pure functions.

The runner hands in bucketed series (:mod:`resildrill.observe.metrics`) and fault timings;
nothing here does I/O, reads a clock or mutates its inputs. Definitions are in the
docstrings of :mod:`resildrill.analysis.recovery` and :mod:`resildrill.analysis.verdict`.
"""

from resildrill.analysis.recovery import (
    FaultWindow,
    RecoveryResult,
    Summary,
    analyse_fault,
    baseline_value,
    bucket_of,
    counted_from_s,
    degraded_flags,
    outage_flags,
    slo_breaches,
    steady_state_holds,
    summarise,
)
from resildrill.analysis.verdict import GateResult, evaluate_gates, outcome_for

__all__ = [
    "FaultWindow",
    "GateResult",
    "RecoveryResult",
    "Summary",
    "analyse_fault",
    "baseline_value",
    "bucket_of",
    "counted_from_s",
    "degraded_flags",
    "evaluate_gates",
    "outage_flags",
    "outcome_for",
    "slo_breaches",
    "steady_state_holds",
    "summarise",
]
