"""Benchmark: render every report format for a synthetic one-hour drill.

Issue 8 asks that a one-hour drill at 1,000 requests per second over 8 workflows (36,000
buckets of 0.1 s per series) renders every format in <= 5 s with peak memory <= 300 MB.

The parent builds the synthetic report.json (8 workflows x requests/failures/p95, 3 probes
x success/latency, 11 SLO breach flags, outage, degraded and 2 servers' heat curves and
states: 47 series, 1.7 million values) and writes it. A fresh child process then does what
``resildrill report`` does: load report.json, re-write report.json, and render HTML, JUnit
and Markdown; it reports its own timings and its peak resident memory (ru_maxrss, the whole
process: interpreter, pydantic, jinja2 and the data), so nothing the parent built is counted.

    .venv/bin/python benchmarks/report.py
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SECONDS = 3600
RES = 0.1
BUCKETS = int(SECONDS / RES)
RATE = 1000  # requests per second over all workflows
WORKFLOWS = [
    "nurse_observations",
    "nurse_medication_round",
    "doctor_results_review",
    "doctor_order_entry",
    "pharmacist_verification",
    "ward_clerk_admission",
    "radiology_report_view",
    "handover_summary",
]
PROBES = ["ehr-api", "fhir-db", "pacs-gateway"]
SERVERS = ["rack-a1", "rack-a2"]
LIMIT_S = 5.0
LIMIT_MB = 300.0


def _faults() -> list[dict[str, Any]]:
    """Six faults through the hour; the last one does not recover."""
    out = []
    for i, start in enumerate((300.0, 900.0, 1500.0, 2100.0, 2700.0, 3200.0)):
        recovered = i < 5
        out.append(
            {
                "id": f"fault-{i + 1}",
                "kind": ["network", "process", "docker", "heat", "network", "docker"][i],
                "inject_requested_at_s": start,
                "injected_at_s": start + 0.2,
                "reverted_at_s": start + 120.0,
                "recovered_at_s": start + 131.5 if recovered else None,
                "recovery": {
                    "time_to_detect_s": 0.7,
                    "time_to_recover_s": 11.5 if recovered else None,
                    "recovered": recovered,
                    "outage_s": 30.0,
                    "degraded_s": 131.3 if recovered else 400.0,
                    "relapses": i % 2,
                    "truncated_by": None,
                },
            }
        )
    return out


def build_report() -> dict[str, Any]:
    """The synthetic report as JSON-ready data."""
    rng = random.Random(8)
    faults = _faults()
    in_fault = [False] * BUCKETS
    for f in faults:
        end = f["recovered_at_s"] or SECONDS
        for b in range(int(f["injected_at_s"] / RES), min(BUCKETS, int(end / RES))):
            in_fault[b] = True
    per_bucket = RATE * RES / len(WORKFLOWS)
    series: dict[str, dict[str, Any]] = {}
    totals: dict[str, dict[str, Any]] = {}
    for w in WORKFLOWS:
        reqs = [float(int(per_bucket + rng.random() * 3)) for _ in range(BUCKETS)]
        fails = [
            r if bad and rng.random() < 0.3 else 0.0 for r, bad in zip(reqs, in_fault, strict=True)
        ]
        p95 = [round((2500.0 if bad else 180.0) + rng.random() * 40, 1) for bad in in_fault]
        series[f"workflow.{w}.requests"] = {"unit": "count", "values": reqs}
        series[f"workflow.{w}.failures"] = {"unit": "count", "values": fails}
        series[f"workflow.{w}.p95_ms"] = {"unit": "ms", "values": p95}
        series[f"slo.{w}-p95.breached"] = {"unit": "flag", "values": [float(b) for b in in_fault]}
        totals[w] = {
            "requests": int(sum(reqs)),
            "failures": int(sum(fails)),
            "failed_actions": int(sum(fails) / 3),
            "p95_ms": 2540.0,
            "wait_beyond_slo_s": 310.2,
        }
    for p in PROBES:
        ok = [None if i % 2 else (0.0 if bad else 1.0) for i, bad in enumerate(in_fault)]
        lat = [None if v is None else round(12 + rng.random() * 5, 1) for v in ok]
        series[f"probe.{p}.success"] = {"unit": "ratio", "values": ok}
        series[f"probe.{p}.latency_ms"] = {"unit": "ms", "values": lat}
        series[f"slo.{p}-up.breached"] = {"unit": "flag", "values": [float(b) for b in in_fault]}
    flags = [float(b) for b in in_fault]
    series["outage"] = {"unit": "flag", "values": flags}
    series["degraded"] = {"unit": "flag", "values": flags}
    for s in SERVERS:
        temps = [round(22 + 15 * (1 - abs(i / BUCKETS * 2 - 1)), 2) for i in range(BUCKETS)]
        states = [0.0 if t < 32 else (1.0 if t < 36 else 2.0) for t in temps]
        series[f"heat.{s}.temp_c"] = {"unit": "°C", "values": temps}
        series[f"heat.{s}.state"] = {"unit": "state", "values": states}
    marks = [
        {"at_s": 0.0, "kind": "baseline_start", "fault_id": None},
        {"at_s": 60.0, "kind": "baseline_end", "fault_id": None},
    ]
    for f in faults:
        marks += [
            {"at_s": f["inject_requested_at_s"], "kind": "inject_requested", "fault_id": f["id"]},
            {"at_s": f["injected_at_s"], "kind": "injected", "fault_id": f["id"]},
            {"at_s": f["reverted_at_s"], "kind": "reverted", "fault_id": f["id"]},
        ]
        if f["recovered_at_s"] is not None:
            marks.append({"at_s": f["recovered_at_s"], "kind": "recovered", "fault_id": f["id"]})
    marks.append({"at_s": float(SECONDS), "kind": "end", "fault_id": None})
    requests = sum(t["requests"] for t in totals.values())
    return {
        "schema": "resildrill.report/v1",
        "run_id": "benchmark-one-hour",
        "drill": {
            "name": "one-hour-benchmark",
            "file": "benchmarks/one-hour.yaml",
            "sha256": "0" * 64,
        },
        "target": {"name": "synthetic", "environment": "test", "sha256": "1" * 64},
        "provenance": {
            "tool_version": "bench",
            "git_commit": None,
            "operator": None,
            "change_ref": None,
        },
        "started_at": "2026-11-26T00:00:00Z",
        "duration_s": float(SECONDS),
        "clock": {"monotonic_t0": 1000.0, "wall_t0": 1795651200.0},
        "outcome": "failed",
        "exit_code": 1,
        "reason": "fault-6 did not recover",
        "partial": False,
        "faults": faults,
        "summary": {"outage_s": 180.0, "degraded_s": 1056.5, "availability": 0.95},
        "load": {
            "requests": requests,
            "failures": sum(t["failures"] for t in totals.values()),
            "by_workflow": totals,
        },
        "integrity": {
            "writes_acknowledged": 250_000,
            "writes_lost": 0,
            "writes_duplicated": 2,
            "writes_unverifiable": 0,
        },
        "gates": [
            {"name": "all_faults_recovered", "limit": True, "value": False, "passed": False},
            {"name": "max_time_to_recover", "limit": 30.0, "value": None, "passed": False},
            {"name": "min_availability", "limit": 0.9, "value": 0.95, "passed": True},
        ],
        "timeline": {"resolution_s": RES, "series": series, "marks": marks},
    }


def child(run_dir: Path) -> None:
    """Load report.json and render every format; print timings and peak memory as JSON."""
    from resildrill.report import FORMATS, load_report, render

    timings: dict[str, float] = {}
    start = time.perf_counter()
    report = load_report(run_dir)
    timings["load"] = time.perf_counter() - start
    out = run_dir / "out"
    out.mkdir()
    for fmt in ("json", "html", "junit", "md"):
        t0 = time.perf_counter()
        render(report, fmt, out)
        timings[fmt] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sizes = {p.name: p.stat().st_size for p in out.iterdir()}
    print(
        json.dumps(
            {"timings": timings, "peak_mb": peak_mb, "sizes": sizes, "formats": list(FORMATS)}
        )
    )


def main() -> int:
    """Build the report, render it in a child process, print the figures; 1 if over limits."""
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        t0 = time.perf_counter()
        data = build_report()
        values = sum(len(s["values"]) for s in data["timeline"]["series"].values())
        (run_dir / "report.json").write_text(json.dumps(data))
        built = time.perf_counter() - t0
        del data
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(run_dir)],
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(proc.stdout)
    t = figures["timings"]
    print(
        f"synthetic drill: {SECONDS} s at {RATE} req/s over {len(WORKFLOWS)} workflows, "
        f"{BUCKETS:,} buckets x {values // BUCKETS} series = {values:,} values "
        f"(built in {built:.1f} s)"
    )
    print("  " + ", ".join(f"{k} {v:.2f} s" for k, v in t.items() if k != "total"))
    print("  sizes: " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in figures["sizes"].items()))
    ok_time = t["total"] <= LIMIT_S
    ok_mem = figures["peak_mb"] <= LIMIT_MB
    print(
        f"load + render every format: {t['total']:.2f} s (limit {LIMIT_S:g} s) "
        f"{'OK' if ok_time else 'OVER'}"
    )
    print(
        f"peak memory of the rendering process: {figures['peak_mb']:.0f} MB "
        f"(limit {LIMIT_MB:g} MB) {'OK' if ok_mem else 'OVER'}"
    )
    return 0 if ok_time and ok_mem else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]))
    else:
        raise SystemExit(main())
