"""The composition root of a drill: run it, analyse what it measured, build report.json.

``run -> analysis -> report``: the runner produces a :class:`RunRecord` of raw facts; the
pure functions of ``analysis`` turn them into recovery figures; this module assembles
them into the ``resildrill.report/v1`` document (DESIGN.md) and decides the exit code.
A crashed run's ``timeline.jsonl`` is rebuilt into the same record, so its partial
report is computed by exactly the same code.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resildrill import __version__
from resildrill.analysis import recovery as rec
from resildrill.analysis import verdict
from resildrill.analysis.delivery import FaultEnd, analyse_delivery
from resildrill.drill.loader import load_drill
from resildrill.drill.model import SLOSpec
from resildrill.errors import ResildrillError
from resildrill.load.driver import WorkflowSeries
from resildrill.observe.metrics import RESOLUTION_S, SourceSeries, TimeSeries, bucket_index
from resildrill.outcome import Verdict, decide
from resildrill.plugins import FaultRegistry
from resildrill.runner.record import FaultRun, RunRecord
from resildrill.runner.timeline import Mark, read_timeline

SCHEMA = "resildrill.report/v1"


@dataclass
class Analysis:
    """Per-bucket judgements and per-fault results of one run."""

    n_buckets: int
    breaches: dict[str, list[bool]]
    degraded: list[bool]
    outage: list[bool]
    baselines: dict[str, float | None]
    faults: list[tuple[FaultRun, rec.RecoveryResult | None]]
    summary: rec.Summary
    gates: list[verdict.GateResult]
    warnings: list[str]
    #: report.json ``delivery`` and its series, when the load sent HL7 messages
    delivery: dict[str, Any] | None = None
    delivery_series: dict[str, list[float | None]] | None = None


def _slo_series(slo: SLOSpec, series: TimeSeries) -> SourceSeries | None:
    name = slo.probe or slo.workflow
    return series.sources.get(name or "")


def judge(record: RunRecord, upto_s: float | None = None) -> Analysis:
    """Analyse a run (or its first ``upto_s`` seconds) with the drill's SLOs and gates."""
    spec = record.drill.spec
    end_s = upto_s if upto_s is not None else record.end_s
    n = max(bucket_index(end_s), 1)
    window = max(1, round(spec.slo_window / RESOLUTION_S))
    stability = max(1, round(spec.stability_window / RESOLUTION_S))
    base_end = bucket_index(record.baseline_end_s)
    warnings: list[str] = []
    breaches: dict[str, list[bool]] = {}
    baselines: dict[str, float | None] = {}
    for slo in spec.slos:
        source = _slo_series(slo, record.series)
        if source is None:
            warnings.append(f"SLO {slo.label!r}: no samples from {slo.probe or slo.workflow!r}")
            breaches[slo.label] = [False] * n
            continue
        source.padded(n)
        base = None
        if slo.expect.relative_to_baseline:
            base = rec.baseline_value(source, slo.expect.metric, 0, base_end)
            baselines[slo.label] = base
        breaches[slo.label] = rec.slo_breaches(
            source,
            slo.expect,
            window_buckets=window,
            min_samples=slo.min_samples,
            n_buckets=n,
            baseline=base,
        )[:n]
    degraded = rec.degraded_flags(list(breaches.values()), n)
    clinical = [s.padded(n) for s in record.series.sources.values() if s.role == "clinical"]
    outage = rec.outage_flags(clinical, n)
    results: list[tuple[FaultRun, rec.RecoveryResult | None]] = []
    injected = sorted(
        (f for f in record.faults if f.inject_requested_at_s is not None),
        key=lambda f: f.inject_requested_at_s or 0.0,
    )
    for i, fr in enumerate(injected):
        nxt = injected[i + 1] if i + 1 < len(injected) else None
        watch_end = nxt.inject_requested_at_s if nxt is not None else end_s
        assert fr.inject_requested_at_s is not None and watch_end is not None
        if fr.injected_at_s is None:
            results.append((fr, None))
            continue
        window_ = rec.FaultWindow(
            id=fr.spec.id,
            kind=fr.spec.kind,
            inject_requested_at_s=fr.inject_requested_at_s,
            injected_at_s=fr.injected_at_s,
            reverted_at_s=fr.reverted_at_s,
            counted_from="revert" if fr.counted_from == "revert" else "inject",
            watch_end_s=watch_end,
            truncated_by=nxt.spec.id if nxt is not None else None,
        )
        results.append(
            (fr, rec.analyse_fault(window_, degraded, outage, stability_buckets=stability))
        )
    for fr in record.faults:
        if fr.inject_requested_at_s is None:
            results.append((fr, None))
    summary = rec.summarise(outage, degraded, min(base_end, n), n)
    delivery, delivery_series = _delivery(record, injected, end_s, n)
    gates = verdict.evaluate_gates(
        spec.gates,
        [(fr.spec.id, r) for fr, r in results if r is not None],
        summary,
        load=_load_figures(record, breaches),
        integrity=record.integrity,
        delivery=delivery,
    )
    return Analysis(
        n, breaches, degraded, outage, baselines, results, summary, gates, warnings,
        delivery, delivery_series,
    )  # fmt: skip


def _delivery(
    record: RunRecord, injected: list[FaultRun], end_s: float, n: int
) -> tuple[dict[str, Any] | None, dict[str, list[float | None]] | None]:
    """HL7 delivery figures when the load sent messages and they were read back."""
    load = record.drill.spec.load
    if record.delivery is None or load is None or load.hl7 is None:
        return None, None
    done = [fr for fr in injected if fr.injected_at_s is not None]
    windows = {
        fr.spec.id: (
            float(fr.injected_at_s or 0.0),
            fr.reverted_at_s if fr.reverted_at_s is not None else fr.injected_at_s or 0.0,
        )
        for fr in done
    }
    # a fault the drill owed a revert that never came (still injected) has not ended
    open_ = {
        fr.spec.id
        for fr in done
        if fr.still_injected or (fr.reverted_at_s is None and fr.counted_from == "revert")
    }
    ends = []
    for fr in done:
        # A backlog cannot drain while another fault still holds it (the EHR killed while its
        # supervisor is frozen): a fault's drain counts from the end of what overlaps it.
        end = windows[fr.spec.id][1]
        while True:
            later = [b for a, b in windows.values() if a <= end < b]
            if not later:
                break
            end = max(later)
        starts = [f.inject_requested_at_s for f in injected if f.inject_requested_at_s is not None]
        nxt = min((t for t in starts if t > end), default=None)
        ends.append(
            FaultEnd(fr.spec.id, end, nxt if nxt is not None else end_s, fr.spec.id not in open_)
        )
    return analyse_delivery(
        record.delivery,
        baseline_end_s=record.baseline_end_s,
        faults=ends,
        n_buckets=n,
        late_after_s=load.hl7.late_after,
        usual_delay=load.hl7.usual_delay,
    )


def steady_state_check(record: RunRecord) -> str | None:
    """For the runner: None when every SLO held through the baseline, else why not."""
    result = judge(record, upto_s=record.baseline_end_s)
    base_end = bucket_index(record.baseline_end_s)
    if rec.steady_state_holds(result.degraded, 0, min(base_end, result.n_buckets)):
        return None
    broken = [name for name, flags in result.breaches.items() if any(flags[:base_end])]
    return "steady state did not hold during the baseline: " + ", ".join(broken)


def verdict_for(record: RunRecord, analysis: Analysis, *, partial: bool = False) -> Verdict:
    """How the run ended (outcome.py decides; this only gathers the facts)."""
    return decide(
        run_status=record.status,
        run_reason=record.reason,
        still_injected=[
            f"{f.spec.id} (undo with: {f.still_injected})"
            for f in record.faults
            if f.still_injected
        ],
        failed_gates=[g.name for g in analysis.gates if not g.passed],
        partial=partial,
    )


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


def _git_commit(path: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(path.parent), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _fault_series(record: RunRecord, n: int, registry: FaultRegistry) -> dict[str, Any]:
    """Series a fault kind contributes itself (heat: temperatures and server states)."""
    out: dict[str, Any] = {}
    for fr in record.faults:
        if fr.injected_at_s is None or fr.spec.kind not in registry.kinds:
            continue
        series = registry.backend(fr.spec.kind).timeline_series(
            fr.spec, start_s=fr.injected_at_s, n_buckets=n, actions=fr.actions
        )
        several = sum(1 for f in record.faults if f.spec.kind == fr.spec.kind) > 1
        for key, value in series.items():
            out[f"{fr.spec.id}.{key}" if several else key] = value
    return out


def _series_json(record: RunRecord, analysis: Analysis, registry: FaultRegistry) -> dict[str, Any]:
    n = analysis.n_buckets
    out: dict[str, Any] = {}
    for s in record.series.sources.values():
        s.padded(n)
        prefix = f"{s.source}.{s.name}"
        if s.source == "probe":
            out[f"{prefix}.success"] = {
                "unit": "ratio",
                "values": [
                    None if s.counts[i] == 0 else round(1 - s.failures[i] / s.counts[i], 3)
                    for i in range(n)
                ],
            }
        else:
            out[f"{prefix}.requests"] = {"unit": "count", "values": s.counts[:n]}
            out[f"{prefix}.failures"] = {"unit": "count", "values": s.failures[:n]}
            if isinstance(s, WorkflowSeries) and any(s.actions):
                # clinical actions by their start: when clinicians' tasks failed, not only
                # how many (report.json load.by_workflow holds the totals)
                out[f"{prefix}.actions"] = {"unit": "count", "values": s.actions[:n]}
                out[f"{prefix}.failed_actions"] = {
                    "unit": "count",
                    "values": s.actions_failed[:n],
                }
        lat_key = "latency_ms" if s.source == "probe" else "p95_ms"
        q = 0.5 if s.source == "probe" else 0.95
        values = []
        for h in s.latency[:n]:
            v = h.quantile(q) if h is not None else None
            values.append(None if v is None else round(v * 1000, 1))
        out[f"{prefix}.{lat_key}"] = {"unit": "ms", "values": values}
    out.update(_fault_series(record, n, registry))
    for name, values in (analysis.delivery_series or {}).items():
        unit = "count" if name == "backlog" else "ms"
        out[f"delivery.{name}"] = {"unit": unit, "values": values}
    for name, flags in analysis.breaches.items():
        out[f"slo.{name}.breached"] = {"unit": "bool", "values": [int(b) for b in flags]}
    out["outage"] = {"unit": "bool", "values": [int(b) for b in analysis.outage]}
    out["degraded"] = {"unit": "bool", "values": [int(b) for b in analysis.degraded]}
    return out


def clinical_impact(record: RunRecord, analysis: Analysis) -> dict[str, Any] | None:
    """report.json ``load``: the driver's totals plus, per workflow, the seconds its SLOs were
    breached (``wait_beyond_slo_s``: time clinicians of that workflow waited beyond the SLO)."""
    return _load_figures(record, analysis.breaches)


def _load_figures(record: RunRecord, breaches: dict[str, list[bool]]) -> dict[str, Any] | None:
    """report.json ``load`` from the driver's summary and the SLO breaches (the gates read
    the same figures the report shows)."""
    if record.load is None:
        return None
    load = dict(record.load)
    by = {k: dict(v) for k, v in load.get("by_workflow", {}).items()}
    for slo in record.drill.spec.slos:
        if slo.workflow and slo.workflow in by:
            flags = breaches.get(slo.label, [])
            waited = sum(flags) * RESOLUTION_S
            prev = by[slo.workflow].get("wait_beyond_slo_s") or 0.0
            by[slo.workflow]["wait_beyond_slo_s"] = round(max(prev, waited), 3)
    for wf in by.values():
        wf.setdefault("wait_beyond_slo_s", None)
    load["by_workflow"] = by
    return load


def blind_spots(record: RunRecord, analysis: Analysis) -> dict[str, Any] | None:
    """Time the clinical probes passed while a workflow breached its SLO: in all, per
    workflow, and as windows; None (not measured) when the drill has no workflow SLO."""
    by_workflow: dict[str, list[bool]] = {}
    n = analysis.n_buckets
    for slo in record.drill.spec.slos:
        if not slo.workflow:
            continue
        flags = analysis.breaches.get(slo.label, [])
        merged = by_workflow.setdefault(slo.workflow, [False] * n)
        for i in range(min(n, len(flags))):
            merged[i] = merged[i] or bool(flags[i])
    if not by_workflow:
        return None
    blind = {
        wf: [merged[i] and not analysis.outage[i] for i in range(n)]
        for wf, merged in by_workflow.items()
    }
    windows = [
        {"workflow": wf, "start_s": _r(a * RESOLUTION_S), "end_s": _r(b * RESOLUTION_S)}
        for wf, flags in blind.items()
        for a, b in _runs(flags)
    ]
    windows.sort(key=lambda w: (w["start_s"], w["workflow"]))
    total = sum(1 for i in range(n) if any(flags[i] for flags in blind.values()))
    return {
        "total_s": _r(total * RESOLUTION_S),
        "by_workflow": {wf: _r(sum(flags) * RESOLUTION_S) for wf, flags in blind.items()},
        "windows": windows,
    }


def _runs(flags: list[bool]) -> list[tuple[int, int]]:
    """Half-open index ranges [a, b) where ``flags`` holds."""
    out: list[tuple[int, int]] = []
    start: int | None = None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            out.append((start, i))
            start = None
    return out


def probe_downtime(record: RunRecord, analysis: Analysis) -> dict[str, list[bool]]:
    """Per probe, buckets in which its checks failed (same rule as the clinical outage)."""
    return {
        s.name: rec.outage_flags([s.padded(analysis.n_buckets)], analysis.n_buckets)
        for s in record.series.sources.values()
        if s.source == "probe"
    }


def restore_order(
    record: RunRecord, analysis: Analysis, down: dict[str, list[bool]]
) -> list[dict[str, Any]]:
    """Services in the order they came back after the first fault, from their probes."""
    first = min(
        (f.inject_requested_at_s for f in record.faults if f.inject_requested_at_s is not None),
        default=None,
    )
    if first is None:
        return []
    start = bucket_index(first)
    probes = {p.name: p for p in record.drill.target.spec.probes}
    rows = []
    for name, flags in down.items():
        failing = [i for i in range(start, len(flags)) if flags[i]]
        if not failing:
            continue
        last = failing[-1]
        restored = last + 1 if last + 1 < len(flags) else None
        spec = probes.get(name)
        rows.append(
            {
                "name": (spec.service if spec and spec.service else name),
                "probe": name,
                "down_at_s": _r(failing[0] * RESOLUTION_S),
                "restored_at_s": _r(restored * RESOLUTION_S) if restored is not None else None,
                "time_to_restore_s": _r((restored - failing[0]) * RESOLUTION_S)
                if restored is not None
                else None,
            }
        )
    rows.sort(key=lambda r: (r["restored_at_s"] is None, r["restored_at_s"] or 0.0))
    for order, row in enumerate(rows, start=1):
        row["order"] = order if row["restored_at_s"] is not None else None
    return rows


def _hosts_json(fr: FaultRun, t0: float) -> dict[str, Any] | None:
    """A remote fault's times on each host (the guard's act, placed on the runner's clock by
    the measured offset, with its uncertainty) and the spread between hosts."""
    timing = (fr.recipe or {}).get("hosts_timing")
    if not timing:
        return None
    rows = []
    for t in timing:
        injected, reverted = t.get("injected_mono"), t.get("reverted_mono")
        rows.append(
            {
                "host": t["host"],
                "injected_at_s": _r(injected - t0) if injected is not None else None,
                "reverted_at_s": _r(reverted - t0) if reverted is not None else None,
                "reverted_by": t.get("reverted_by"),
                "clock_uncertainty_s": t.get("uncertainty_s"),
                "error": t.get("error"),
            }
        )

    def spread(key: str) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return _r(max(values) - min(values)) if len(values) > 1 else None

    return {
        "hosts": rows,
        "injection_spread_s": spread("injected_at_s"),
        "revert_spread_s": spread("reverted_at_s"),
    }


def _fault_json(
    fr: FaultRun, res: rec.RecoveryResult | None, t0: float, delivery: dict[str, Any] | None
) -> dict[str, Any]:
    """report.json ``faults[]``: one fault as it happened and how the system recovered."""
    entry: dict[str, Any] = {
        "id": fr.spec.id,
        "kind": fr.spec.kind,
        "description": fr.spec.description,
        "inject_requested_at_s": _r(fr.inject_requested_at_s),
        "injected_at_s": _r(fr.injected_at_s),
        "reverted_at_s": _r(fr.reverted_at_s),
        "recovered_at_s": _r(res.recovered_at_s) if res else None,
        "counted_from": fr.counted_from,
        "actions": fr.actions,
        "error": fr.error,
        "revert": fr.revert_detail,
        "still_injected": fr.still_injected,
        "timing": fr.timing or None,
        "remote": _hosts_json(fr, t0),
        # a signal aimed at a system call (process ``during``): what was caught, how fast
        "aimed": (fr.recipe or {}).get("aimed"),
        # the HL7 backlog when the fault ended and the time to drain it (docs/hl7.md)
        "delivery": ((delivery or {}).get("by_fault") or {}).get(fr.spec.id),
        "spec": fr.spec.model_dump(mode="json", exclude_none=True),
        "recovery": None
        if res is None
        else {
            "time_to_detect_s": _r(res.time_to_detect_s),
            "time_to_recover_s": _r(res.time_to_recover_s),
            "recovered": res.recovered,
            "outage_s": _r(res.outage_s),
            "degraded_s": _r(res.degraded_s),
            "relapses": res.relapses,
            "truncated_by": res.truncated_by,
        },
    }
    return entry


def _probes_json(record: RunRecord, down: dict[str, list[bool]]) -> list[dict[str, Any]]:
    """report.json ``probes[]``: samples, failures, outage and availability per probe."""
    probe_specs = {p.name: p for p in record.drill.target.spec.probes}
    probes = []
    for s in record.series.sources.values():
        if s.source != "probe":
            continue
        total = sum(s.counts)
        spec = probe_specs.get(s.name)
        probes.append(
            {
                "name": s.name,
                "role": s.role,
                "service": spec.service if spec else None,
                "samples": total,
                "failures": sum(s.failures),
                "outage_s": _r(sum(down[s.name]) * RESOLUTION_S),
                "availability": _r(1 - sum(s.failures) / total, 4) if total else None,
            }
        )
    return probes


def build_report(
    record: RunRecord,
    analysis: Analysis,
    *,
    partial: bool = False,
    registry: FaultRegistry | None = None,
) -> dict[str, Any]:
    """The report.json document of a run (``registry``: the run's fault kinds, if at hand)."""
    registry = registry or FaultRegistry.discover()
    drill, target = record.drill, record.drill.target
    verdict = verdict_for(record, analysis, partial=partial)
    faults = [
        _fault_json(fr, res, record.monotonic_t0, analysis.delivery) for fr, res in analysis.faults
    ]
    down = probe_downtime(record, analysis)
    probes = _probes_json(record, down)
    try:
        drill_text = drill.path.read_text(encoding="utf-8")
    except OSError:
        drill_text = None
    return {
        "schema": SCHEMA,
        "run_id": record.run_id,
        "drill": {"name": drill.spec.name, "file": str(drill.path), "sha256": drill.sha256},
        "target": {
            "name": target.spec.name,
            "environment": target.spec.environment,
            "file": str(target.path),
            "sha256": target.sha256,
            "approved_by": target.spec.approved_by,
        },
        "provenance": {
            "tool_version": __version__,
            "git_commit": _git_commit(drill.path),
            "operator": os.environ.get("RESILDRILL_OPERATOR") or _user(),
            "change_ref": os.environ.get("RESILDRILL_CHANGE_REF"),
        },
        "started_at": record.started_at,
        "duration_s": _r(record.end_s),
        "clock": {"monotonic_t0": record.monotonic_t0, "wall_t0": record.wall_t0},
        "outcome": verdict.outcome.name,
        "exit_code": verdict.exit_code,
        "reason": verdict.reason,
        "partial": partial,
        # what the runner said, before any gate: the history's gates decide again from it
        "run_status": record.status,
        "run_reason": record.reason,
        "slo_window_s": drill.spec.slo_window,
        "stability_window_s": drill.spec.stability_window,
        "baseline_end_s": record.baseline_end_s,
        "slos": [
            {
                "name": slo.label,
                "source": slo.probe or slo.workflow,
                "expect": slo.expect.text,
                "baseline": _r(analysis.baselines.get(slo.label)),
                "breached_s": _r(sum(analysis.breaches[slo.label]) * RESOLUTION_S),
            }
            for slo in drill.spec.slos
        ],
        "probes": probes,
        "faults": faults,
        "manual": record.manual,
        "summary": {
            "outage_s": _r(analysis.summary.outage_s),
            "degraded_s": _r(analysis.summary.degraded_s),
            "availability": _r(analysis.summary.availability, 5),
        },
        "load": clinical_impact(record, analysis),
        "blind_spots": blind_spots(record, analysis),
        "services": restore_order(record, analysis, down),
        "notices": record.notices,
        "integrity": record.integrity,
        "delivery": analysis.delivery,
        "gates": [
            {"name": g.name, "limit": g.limit, "value": g.value, "passed": g.passed}
            | ({"reason": g.reason} if g.reason else {})
            for g in analysis.gates
        ],
        "warnings": analysis.warnings,
        "drill_as_run": drill_text,
        "timeline": {
            "resolution_s": RESOLUTION_S,
            "series": _series_json(record, analysis, registry),
            "marks": [
                {"at_s": m.at_s, "kind": m.kind, "fault_id": m.fault_id, "detail": m.detail}
                for m in record.marks
            ],
        },
    }


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def write_json(report: dict[str, Any], run_dir: Path) -> Path:
    """Write report.json atomically."""
    path = run_dir / "report.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def _apply_journal(record: RunRecord, runs: dict[str, FaultRun], run_dir: Path) -> None:
    """What the journal knows and the timeline missed: an injection the runner journalled
    just before it died, and reverts made after it died (by the watchdog or ``rollback``),
    placed on the run's clock by their ``mono`` stamps."""
    from resildrill.runner.journal import read_journal

    try:
        records = read_journal(run_dir / "journal.jsonl", verify=True)
    except ResildrillError:
        return
    for entry in records:
        fr = runs.get(str(entry.get("fault_id")))
        mono = entry.get("mono")
        if fr is None or not isinstance(mono, float | int):
            continue
        at = round(float(mono) - record.monotonic_t0, 4)
        if entry["type"] == "injected" and fr.injected_at_s is None:
            fr.injected_at_s = at
            fr.inject_requested_at_s = fr.inject_requested_at_s or at
        elif entry["type"] == "reverted" and fr.injected_at_s is not None:
            if fr.reverted_at_s is None:
                fr.reverted_at_s = at
                record.marks.append(Mark(at, "reverted", fr.spec.id, "after the runner stopped"))
            fr.revert_detail = str(entry.get("result") or "")


def rebuild_record(run_dir: Path, registry: FaultRegistry | None = None) -> RunRecord:
    """Rebuild a crashed run's record from its timeline.jsonl and journal (for a partial report)."""
    lines = read_timeline(run_dir / "timeline.jsonl")
    if not lines or lines[0].get("t") != "header":
        raise ValueError(f"{run_dir}/timeline.jsonl has no header")
    header = lines[0]
    registry = registry or FaultRegistry.discover()
    drill = load_drill(header["drill"], registry)
    series = TimeSeries()
    for probe in drill.target.spec.probes:
        series.source(probe.name, "probe", probe.role)
    record = RunRecord(
        run_id=header["run_id"],
        run_dir=run_dir,
        drill=drill,
        monotonic_t0=header["monotonic_t0"],
        wall_t0=header["wall_t0"],
        started_at=header["started_at"],
        series=series,
        baseline_end_s=header["baseline_end_s"],
        status="error",
        reason="the runner stopped before the end",
    )
    from resildrill.clock import MonotonicClock
    from resildrill.faults.base import FaultContext
    from resildrill.load.driver import LoadBucket, WorkflowTotals, apply_buckets, totals_json
    from resildrill.observe.histogram import LatencyHistogram

    ctx = FaultContext(
        drill.target.spec, drill.target.path.parent, header["run_id"], MonotonicClock()
    )

    def counted_from(spec: Any) -> str:
        try:
            heals = registry.backend(spec.kind).self_heals(spec, ctx)
        except Exception:  # a backend that cannot judge offline: assume the drill ends it
            heals = False
        return "inject" if heals else "revert"

    runs = {f.id: FaultRun(spec=f, counted_from=counted_from(f)) for f in drill.spec.faults}
    totals: dict[str, WorkflowTotals] = {}
    last = 0.0
    for line in lines[1:]:
        if line.get("t") == "s" and line["p"] in series.sources:
            series.sources[line["p"]].add(line["at"], line["ok"], line["l"])
            last = max(last, line["at"])
        elif line.get("t") == "lb":
            bucket = LoadBucket(
                line["w"],
                int(line["i"]),
                int(line["n"]),
                int(line["f"]),
                LatencyHistogram.from_json(line["h"]),
                int(line.get("a", 0)),
                int(line.get("af", 0)),
            )
            apply_buckets(series, [bucket])
            totals.setdefault(bucket.workflow, WorkflowTotals()).add(bucket)
            last = max(last, (bucket.index + 1) * RESOLUTION_S)
        elif line.get("t") == "mark":
            m = Mark(line["at_s"], line["kind"], line.get("fault_id"), line.get("detail"))
            record.marks.append(m)
            if m.kind == "baseline_end":
                record.baseline_end_s = m.at_s
            last = max(last, m.at_s)
            fr = runs.get(m.fault_id or "")
            if fr is not None:
                if m.kind == "inject_requested":
                    fr.inject_requested_at_s = m.at_s
                elif m.kind == "injected":
                    fr.injected_at_s = m.at_s
                elif m.kind == "reverted":
                    fr.reverted_at_s = m.at_s
    _apply_journal(record, runs, run_dir)
    record.faults = list(runs.values())
    record.end_s = max(last, *(fr.reverted_at_s or 0.0 for fr in runs.values()))
    if totals:
        # what the runner had received when it stopped (buckets still on the workers are lost)
        record.load = totals_json(totals)
    return record
