"""Fault kind ``heat``: a heatwave played over the target's servers (issue 6).

- spec.py      the ``kind: heat`` drill-file shape and its presets
- model.py     the pure deterministic model: room curve, server states, the schedule
- backend.py   HeatFaultBackend: applies the schedule to live processes as the runner ticks

``heat_series(spec)`` gives the planned curves and states per 100 ms for the report.
"""

from __future__ import annotations

from resildrill.drill.model import TargetSpec
from resildrill.faults.heat.model import Schedule, simulate
from resildrill.faults.heat.spec import HeatFaultSpec

__all__ = ["HeatFaultSpec", "Schedule", "heat_series", "heat_warnings", "simulate"]


def heat_warnings(spec: HeatFaultSpec, target: TargetSpec | None = None) -> list[str]:
    """Warnings for ``validate``/``plan``: scaled intervals shorter than real restarts, etc."""
    from resildrill.faults.heat.schedule import heat_warnings as warnings

    return warnings(spec, target)


def heat_series(
    spec: HeatFaultSpec,
    *,
    start_s: float = 0.0,
    n_buckets: int | None = None,
    actions: list[dict[str, object]] | None = None,
    resolution_s: float = 0.1,
) -> dict[str, dict[str, object]]:
    """Report timeline series for one heat fault, bucket ``i`` = ``[i*0.1 s, (i+1)*0.1 s)``.

    Named and shaped as the report's timeline wants (docs/reports.md): planned, from the
    model, ``heat.room`` and ``heat.<server>.temp_c`` (°C), and ``heat.<server>.state``
    (``model.REPORT_CODE`` values; ``labels`` maps each value, as a string, to its state),
    None outside the fault (``start_s`` is its ``injected_at_s``). Observed, when the run's
    ``actions`` are given: ``heat.<server>.observed_state``, coded the same way. With two
    heat faults, prefix the keys with the fault id.
    """
    from resildrill.faults.heat.model import observed_states, series

    out = series(simulate(spec), resolution_s, start_s=start_s, n_buckets=n_buckets)
    if actions is not None:
        n = n_buckets if n_buckets is not None else len(out["heat.room"]["values"])  # type: ignore[arg-type]
        out.update(observed_states(actions, n, resolution_s))
    return out
