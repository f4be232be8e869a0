"""Semantic checks of drills and targets, after their models have validated.

Owns the cross-field rules a single model field cannot see: references resolve (an SLO's
probe, a fault's service, a probe's service exist in the target), ids are unique, the
timeline makes sense (fault windows that overlap, offsets past any sensible drill, a
recovery window too short to ever confirm recovery). Each problem is located through the
loader's source map. Errors stop a drill; warnings (``severity="warning"``) are printed but
do not. Nothing here touches the target system: that is the runner's preflight.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from resildrill.drill.model import (
    DrillSpec,
    FaultSpec,
    HaltCondition,
    ManualStep,
    ProbeSpec,
    SLOSpec,
    TargetSpec,
    format_duration,
)
from resildrill.errors import Problem

__all__ = [
    "MAX_DRILL_S",
    "SUSPICIOUS_OFFSET_S",
    "DrillParts",
    "Locator",
    "check_drill",
    "check_drill_parts",
    "check_probes",
    "check_target",
]

#: A drill (baseline, faults, recovery) longer than this is refused: a typo, not a drill.
MAX_DRILL_S = 86_400.0
#: A fault starting later than this after the baseline is probably a unit mistake.
SUSPICIOUS_OFFSET_S = 3_600.0

Loc = tuple[str | int, ...]


class Locator(Protocol):
    """Turns a location in the document into a located :class:`Problem`."""

    def problem(
        self, loc: Loc, message: str, severity: str = "error", *, key: bool = False
    ) -> Problem:
        """A problem at ``loc`` (or at its nearest located parent)."""
        ...


def _unknown(what: str, name: str, known: list[str], owner: str = "the target has") -> str:
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"unknown {what} {name!r} (did you mean {close[0]!r}?)"
    return f"unknown {what} {name!r} ({owner}: {', '.join(known) or 'none'})"


def _duplicates(items: Sequence[tuple[str, Loc]], what: str, where: Locator) -> list[Problem]:
    seen: dict[str, Loc] = {}
    problems = []
    for name, loc in items:
        if name in seen:
            first = seen[name]
            problems.append(
                where.problem(loc, f"duplicate {what} {name!r} (also at {_fmt(first)})")
            )
        else:
            seen[name] = loc
    return problems


def _fmt(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def check_target(target: TargetSpec, where: Locator) -> list[Problem]:
    """Problems of a target beyond its model: unique probe names, known services."""
    problems = check_probes(list(enumerate(target.probes)), sorted(target.services), where)
    if not any(p.role == "clinical" for p in target.probes):
        message = "no probe has 'role: clinical', so the drill cannot measure an outage"
        problems.append(where.problem(("probes",), message, "warning"))
    return problems


def check_probes(
    probes: Sequence[tuple[int, ProbeSpec]], services: list[str] | None, where: Locator
) -> list[Problem]:
    """Probe names are unique and name known services (``services`` None: not known).

    Takes the probes that validated with their index in the file, so it also runs on a
    target whose other parts have errors.
    """
    problems = _duplicates(
        [(p.name, ("probes", i, "name")) for i, p in probes], "probe name", where
    )
    for i, probe in probes:
        if services is not None and probe.service is not None and probe.service not in services:
            loc: Loc = ("probes", i, "service")
            problems.append(where.problem(loc, _unknown("service", probe.service, services)))
    return problems


@dataclass(frozen=True)
class DrillParts:
    """The list items of a drill that validated, each with its index in the file."""

    slos: Sequence[tuple[int, SLOSpec]]
    faults: Sequence[tuple[int, FaultSpec]]
    manual: Sequence[tuple[int, ManualStep]]
    halts: Sequence[tuple[int, HaltCondition]] = ()

    @classmethod
    def of(cls, drill: DrillSpec) -> DrillParts:
        """Every item of a validated drill."""
        return cls(
            list(enumerate(drill.slos)),
            list(enumerate(drill.faults)),
            list(enumerate(drill.manual)),
            list(enumerate(drill.abort_when)),
        )


def check_drill(
    drill: DrillSpec, target: TargetSpec | None, where: Locator, drill_dir: Path | None = None
) -> list[Problem]:
    """Problems of a drill beyond its model, given its target when that one loaded.

    Args:
        drill: the validated drill.
        target: its validated target, or None when the target has problems of its own
            (reference checks are then skipped, not guessed).
        where: locates each problem in the drill file.
        drill_dir: the drill file's folder, against which its relative paths are read
            (``load.bearer_token_file``, ``load.locustfile``); None skips those checks.
    """
    parts = DrillParts.of(drill)
    return (
        check_drill_parts(parts, target, where)
        + _check_workflows(drill, parts, where)
        + _check_windows(drill, where)
        + _fault_kind_warnings(drill, target, where)
        + (_check_load_files(drill, drill_dir, where) if drill_dir is not None else [])
        + (_check_load_host(drill, target, where) if target is not None else [])
        + (_check_load_destinations(drill, target, where) if target is not None else [])
    )


def _check_load_destinations(drill: DrillSpec, target: TargetSpec, where: Locator) -> list[Problem]:
    """``load.hl7`` and ``load.dicom`` name a service of the target that has an address, or
    one of its proxies."""
    problems: list[Problem] = []
    for part in ("hl7", "dicom"):
        spec = getattr(drill.load, part, None) if drill.load is not None else None
        if spec is None:
            continue
        if spec.proxy is not None:
            proxies = list(target.toxiproxy.proxies) if target.toxiproxy is not None else []
            if spec.proxy not in proxies:
                message = _unknown("proxy", spec.proxy, proxies)
                problems.append(where.problem(("load", part, "proxy"), message))
        if spec.service is None:
            continue
        loc: Loc = ("load", part, "service")
        if spec.service not in target.services:
            message = _unknown("service", spec.service, list(target.services))
            problems.append(where.problem(loc, message))
        elif target.services[spec.service].address is None:
            message = f"service {spec.service!r} has no address in the target"
            problems.append(where.problem(loc, message))
    return problems


def _check_load_host(drill: DrillSpec, target: TargetSpec, where: Locator) -> list[Problem]:
    """Clinician load needs somewhere to go: ``load.host``, or the target's clinical HTTP
    probe (what ``run`` would otherwise refuse with exit 2 after starting)."""
    if drill.load is None or drill.load.host is not None:
        return []
    if any(p.role == "clinical" and p.http is not None for p in target.probes):
        return []
    return [
        where.problem(
            ("load",),
            "set 'load.host' (the URL clinicians' requests go to): the target has no "
            "clinical HTTP probe to take it from",
        )
    ]


def _check_load_files(drill: DrillSpec, drill_dir: Path, where: Locator) -> list[Problem]:
    """Files the load reads exist (relative paths are read beside the drill file)."""
    load = drill.load
    if load is None:
        return []
    problems = []
    for key, name in (
        ("bearer_token_file", load.bearer_token_file),
        ("locustfile", load.locustfile),
    ):
        if name is None:
            continue
        path = Path(name).expanduser()
        path = path if path.is_absolute() else drill_dir / path
        if not path.is_file():
            problems.append(where.problem(("load", key), f"no file {str(path)!r}"))
    return problems


def check_drill_parts(
    parts: DrillParts, target: TargetSpec | None, where: Locator
) -> list[Problem]:
    """The checks that need only a drill's list items: ids, references, fault timing.

    Runs on the items that validated, so a drill with errors elsewhere still gets them.
    """
    problems = _duplicates(
        [(f.id, ("faults", i, "id")) for i, f in parts.faults]
        + [(m.id, ("manual", i, "id")) for i, m in parts.manual],
        "id",
        where,
    )
    if target is not None:
        problems += _check_references(parts, target, where)
    for i, fault in parts.faults:
        if fault.duration is not None and fault.duration <= 0:
            problems.append(where.problem(("faults", i, "duration"), "a fault must last > 0s"))
        if fault.at > SUSPICIOUS_OFFSET_S:
            problems.append(
                where.problem(
                    ("faults", i, "at"),
                    f"starts {format_duration(fault.at)} after the baseline: is the unit right?",
                    "warning",
                )
            )
    problems += _check_overlaps(parts.faults, where)
    return problems


def _check_references(parts: DrillParts, target: TargetSpec, where: Locator) -> list[Problem]:
    problems = []
    probes = [p.name for p in target.probes]
    for i, slo in parts.slos:
        if slo.probe is not None and slo.probe not in probes:
            problems.append(
                where.problem(("slos", i, "probe"), _unknown("probe", slo.probe, probes))
            )
    for i, halt in parts.halts:
        if halt.probe is not None and halt.probe not in probes:
            message = _unknown("probe", halt.probe, probes)
            problems.append(where.problem(("abort_when", i, "probe"), message))
    services = sorted(target.services)
    for i, fault in parts.faults:
        service = getattr(fault, "service", None)
        if isinstance(service, str) and service not in target.services:
            message = _unknown("service", service, services)
            problems.append(where.problem(("faults", i, "service"), message))
        elif isinstance(service, str) and _nobody_restarts(fault, target, service):
            problems.append(
                where.problem(
                    ("faults", i, "service"),
                    f"the target does not say who restarts {service!r} after it is killed "
                    "('recovery: supervisor' is assumed); declare its recovery: supervisor, "
                    "restart (with restart.command) or none",
                    "warning",
                )
            )
    hosts = sorted(target.hosts)
    for i, fault in parts.faults:  # kinds that act on hosts of the estate (resource)
        host = getattr(fault, "host", None)
        named: list[tuple[Loc, str]] = (
            [(("faults", i, "host"), host)] if isinstance(host, str) else []
        )
        for j, h in enumerate(getattr(fault, "hosts", None) or []):
            named.append((("faults", i, "hosts", j), h))
        for loc, name in named:
            if name not in target.hosts:
                message = _unknown("host", name, hosts, "the target's hosts has")
                problems.append(where.problem(loc, message))
    proxies = sorted(target.toxiproxy.proxies) if target.toxiproxy else []
    for i, fault in parts.faults:
        proxy = getattr(fault, "proxy", None)  # kinds that act through a Toxiproxy proxy
        if isinstance(proxy, str) and proxy not in proxies:
            message = _unknown("proxy", proxy, proxies, "the target's toxiproxy.proxies has")
            problems.append(where.problem(("faults", i, "proxy"), message))
    return problems


def _nobody_restarts(fault: FaultSpec, target: TargetSpec, service: str) -> bool:
    """A kill of a service whose target file never chose its recovery."""
    if getattr(fault, "action", None) not in ("kill", "terminate"):
        return False
    return "recovery" not in target.services[service].model_fields_set


def _check_workflows(drill: DrillSpec, parts: DrillParts, where: Locator) -> list[Problem]:
    """SLOs and halt conditions on a workflow need load that plays that workflow.

    An SLO nobody's requests can meet is an error; a halt condition that can never fire
    is a warning (the drill still runs, with that safety net missing).
    """
    uses: list[tuple[Loc, str, str]] = []
    uses += [(("slos", i, "workflow"), s.workflow, "error") for i, s in parts.slos if s.workflow]
    uses += [
        (("abort_when", i, "workflow"), h.workflow, "warning") for i, h in parts.halts if h.workflow
    ]
    load = drill.load
    if load is None:
        message = "no clinician load plays a workflow: add a 'load' section"
        return [where.problem(loc, message, severity) for loc, _, severity in uses]
    if load.workflows:
        known = sorted(load.workflows)
    elif load.locustfile:
        return []  # the user's own locustfile names its workflows
    else:
        from resildrill.load.sizing import PERSONAS  # pure data: the built-in personas

        known = sorted(p.workflow for p in PERSONAS)
    return [
        where.problem(loc, _unknown("workflow", name, known, "the load plays"), severity)
        for loc, name, severity in uses
        if name not in known
    ]


def _fault_kind_warnings(
    drill: DrillSpec, target: TargetSpec | None, where: Locator
) -> list[Problem]:
    """Warnings a fault kind gives about its own spec (heat: time scaling vs restarts).

    A kind's ``drill_warnings(target)`` hook that also takes ``drill`` is given the whole
    drill, for checks across it (heat: a server that can be lost needs a manual repair step
    inside the fault).
    """
    problems = []
    for i, fault in enumerate(drill.faults):
        hook = getattr(fault, "drill_warnings", None)
        if callable(hook):
            try:
                takes_drill = "drill" in inspect.signature(hook).parameters
            except (TypeError, ValueError):
                takes_drill = False
            for text in hook(target, drill=drill) if takes_drill else hook(target):
                problems.append(where.problem(("faults", i), str(text), "warning"))
    return problems


def _check_windows(drill: DrillSpec, where: Locator) -> list[Problem]:
    problems = []
    for i, fault in enumerate(drill.faults):
        if fault.duration is not None and fault.duration > drill.max_fault_lifetime:
            problems.append(
                where.problem(
                    ("faults", i, "duration"),
                    f"lasts {format_duration(fault.duration)}, longer than max_fault_lifetime "
                    f"{format_duration(drill.max_fault_lifetime)}: the watchdog would end it "
                    "early",
                )
            )
    if drill.phases.recovery < drill.stability_window:
        problems.append(
            where.problem(
                ("phases", "recovery"),
                f"recovery window {format_duration(drill.phases.recovery)} is shorter than "
                f"stability_window {format_duration(drill.stability_window)}: "
                "recovery could never be confirmed",
            )
        )
    ends = [0.0] + [f.at + (f.duration or 0.0) for f in drill.faults]
    ends += [m.at + m.timeout for m in drill.manual]
    total = drill.phases.baseline + max(ends) + drill.phases.recovery
    if total > MAX_DRILL_S:
        problems.append(
            where.problem(
                (),
                f"the drill would last {format_duration(total)}; a drill lasts at most 24h",
            )
        )
    return problems


def _overlap(earlier: FaultSpec) -> str:
    if earlier.duration is None:
        return f"is injected together with {earlier.id!r} (at {format_duration(earlier.at)})"
    end = format_duration(earlier.at + earlier.duration)
    return f"starts while {earlier.id!r} is active ({format_duration(earlier.at)} to {end})"


def _check_overlaps(faults: Sequence[tuple[int, FaultSpec]], where: Locator) -> list[Problem]:
    """Warn when a fault starts while another is active (its recovery watch is cut short).

    A fault without a duration ends when the system heals itself, which the plan cannot
    know; it counts as an instant, so only a fault injected at the same moment overlaps it.
    """
    problems = []
    order = sorted(faults, key=lambda item: (item[1].at, item[0]))
    for pos, (j, later) in enumerate(order):
        for _i, earlier in order[:pos]:
            end = earlier.at + (earlier.duration or 0.0)
            if later.at < end or later.at == earlier.at:
                problems.append(
                    where.problem(
                        ("faults", j, "at"),
                        f"fault {later.id!r} {_overlap(earlier)}, so the recovery of "
                        f"{earlier.id!r} is only watched until {later.id!r} is injected",
                        "warning",
                    )
                )
                break
    return problems
