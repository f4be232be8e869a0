"""The cached schedule of a heat fault, and what ``validate`` and ``plan`` warn about it.

Pure functions of a heat spec and its target (nothing is touched), shared by the backend
(which plays the schedule) and the spec's own ``drill_warnings``: kept apart from both so
neither imports the other.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from resildrill.drill.model import TargetSpec
from resildrill.faults.heat.model import Schedule, scaling_warnings, simulate

if TYPE_CHECKING:
    from resildrill.faults.heat.spec import HeatFaultSpec

_CACHE: dict[str, Schedule] = {}


def schedule_for(spec: HeatFaultSpec) -> Schedule:
    """The (cached) schedule of a spec: the model is pure, so one run per spec suffices."""
    key = spec.model_dump_json()
    if key not in _CACHE:
        if len(_CACHE) > 32:
            _CACHE.clear()
        _CACHE[key] = simulate(spec)
    return _CACHE[key]


def restart_time_of(spec: HeatFaultSpec, target: TargetSpec | None) -> float:
    """The real time a server takes to come back: the spec's estimate or the target's delays."""
    best = spec.restart_time
    if target is None:
        return best
    stack = target.stack or {}
    delay = stack.get("restart_delay")
    if isinstance(delay, str):
        from resildrill.drill.model import parse_duration

        with contextlib.suppress(ValueError):
            best = max(best, parse_duration(delay) + 1.0)
    for name in spec.servers:
        service = target.services.get(name)
        if service is not None and service.restart is not None:
            best = max(best, service.restart.delay + 1.0)
    return best


def heat_warnings(spec: HeatFaultSpec, target: TargetSpec | None = None) -> list[str]:
    """What ``validate`` and ``plan`` should warn about a heat fault (nothing is touched):
    scaled intervals shorter than the target's restart time, coarse ticks, cooling restored
    after the fault's end."""
    return scaling_warnings(schedule_for(spec), restart_time_of(spec, target))
