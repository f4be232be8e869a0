"""Fault kind ``heat``: a heatwave played over the target's servers (issue 6).

- spec.py      the ``kind: heat`` drill-file shape and its presets
- model.py     the pure deterministic model: room curve, server states, the schedule
- backend.py   HeatFaultBackend: applies the schedule to live processes as the runner ticks

``heat_series(spec)`` gives the planned curves and states per 100 ms for the report.
"""

from __future__ import annotations

from resildrill.faults.heat.model import Schedule, simulate
from resildrill.faults.heat.spec import HeatFaultSpec

__all__ = ["HeatFaultSpec", "Schedule", "heat_series", "simulate"]


def heat_series(spec: HeatFaultSpec, resolution_s: float = 0.1) -> dict[str, dict[str, object]]:
    """Planned room/inlet temperatures (°C) and server state codes per ``resolution_s`` real
    seconds from the fault's injection; ``labels`` names each state code."""
    from resildrill.faults.heat.model import series

    return series(simulate(spec), resolution_s)
