"""The regression gate: is a figure worse than the median of the drill's last runs?

Pure functions, no I/O: :func:`check_regression` compares one value with the values of
previous runs; :func:`regression_gates` applies a drill's ``gates.regression`` to a run's
figures and returns report.json ``gates[]`` entries named ``regression.<metric>``.

A figure regresses when it is worse than the median of the previous values by more than
``margin`` (relative) *and* by more than ``min_change`` (absolute, seconds for time
figures). Availability is judged on its complement (unavailability): 99.0% after a median
of 99.5% is twice the unavailability, which a margin on availability itself would hide.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from resildrill.drill.model import RegressionGate
from resildrill.history.figures import METRIC_UNITS, RunFigures

__all__ = ["RegressionCheck", "check_regression", "regression_gates"]

# Figures rounded to milliseconds must never fail a limit they equal.
_TOLERANCE = 1e-6


@dataclass(frozen=True)
class RegressionCheck:
    """The verdict on one figure against its history."""

    metric: str
    value: float | None
    median: float | None
    limit: float | None
    runs: int
    passed: bool
    reason: str


def _fmt(metric: str, x: float) -> str:
    unit = METRIC_UNITS.get(metric, "")
    if unit == "s":
        return f"{x:.3g} s"
    if unit == "ratio":
        return f"{x * 100:.4g}%"
    return f"{x:g}"


def check_regression(
    metric: str,
    value: float | None,
    previous: Sequence[float | None],
    *,
    margin: float,
    min_runs: int,
    min_change: float = 0.0,
    higher_is_better: bool = False,
    none_is_worst: bool = False,
) -> RegressionCheck:
    """Compare ``value`` with the median of ``previous`` (``None`` values are skipped).

    Args:
        metric: the figure's name, used in the reason.
        value: this run's figure; ``None`` fails when ``none_is_worst`` (a fault that did
            not recover), else passes (nothing was detected).
        previous: the figure in previous runs, any order.
        margin: relative margin (0.2 = 20% worse than the median is still a pass).
        min_runs: fewer previous values than this: pass, saying so.
        min_change: an absolute change at or below this is never a regression.
        higher_is_better: availability-like ratios in [0, 1], judged on ``1 - value``.
        none_is_worst: whether a missing value means "worse than anything".
    """
    values = [v for v in previous if v is not None]
    if len(values) < min_runs:
        return RegressionCheck(
            metric,
            value,
            None,
            None,
            len(values),
            True,
            f"not enough history: {len(values)} previous run(s) with a {metric} figure, "
            f"the gate needs {min_runs}",
        )
    median = statistics.median(values)
    if higher_is_better:
        worst_bad = max((1.0 - median) * (1.0 + margin), (1.0 - median) + min_change)
        limit = 1.0 - worst_bad
    else:
        limit = max(median * (1.0 + margin), median + min_change)
    if value is None:
        passed = not none_is_worst
        why = "no figure in this run" + (" (did not recover)" if none_is_worst else "")
        return RegressionCheck(metric, None, median, limit, len(values), passed, why)
    passed = value >= limit - _TOLERANCE if higher_is_better else value <= limit + _TOLERANCE
    relation = "within" if passed else "worse than"
    reason = (
        f"{metric} {_fmt(metric, value)} is {relation} the limit {_fmt(metric, limit)} "
        f"(median {_fmt(metric, median)} of the last {len(values)} run(s) "
        f"+ {margin * 100:g}% margin)"
    )
    return RegressionCheck(metric, value, median, limit, len(values), passed, reason)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def regression_gates(
    spec: RegressionGate, current: RunFigures, previous: Sequence[RunFigures]
) -> list[dict[str, Any]]:
    """report.json ``gates[]`` entries for ``spec``: one per metric, in the spec's order.

    ``previous`` are earlier runs of the same drill, newest first; only completed ones
    (passed or failed, not partial) count, and only the first ``spec.last_n`` of those.
    """
    window = [r for r in previous if r.completed and r.run_id != current.run_id][: spec.last_n]
    gates: list[dict[str, Any]] = []
    for metric in spec.metrics:
        unit = METRIC_UNITS[metric]
        check = check_regression(
            metric,
            current.metric(metric),
            [r.metric(metric) for r in window],
            margin=spec.margin,
            min_runs=min(spec.min_runs, spec.last_n),
            min_change=spec.min_change if unit == "s" else 0.0,
            higher_is_better=metric == "availability",
            none_is_worst=metric == "time_to_recover",
        )
        gates.append(
            {
                "name": f"regression.{metric}",
                "limit": _round(check.limit),
                "value": _round(check.value),
                "passed": check.passed,
                "unit": unit,
                "reason": check.reason,
                "median": _round(check.median),
                "margin": spec.margin,
                "compared_runs": [r.run_id for r in window if r.metric(metric) is not None],
            }
        )
    return gates
