"""Capacity and baseline cost of the bundled ward EHR, through its gateway with 2 replicas.

For each store (SQLite, then PostgreSQL when it can be started here) it starts a stack on
free 127.0.0.1 ports and measures:

* read capacity: closed-loop clients reading (a patient, a clinician's observation search);
* write capacity: closed-loop clients creating observations (each a durable commit);
* baseline: 50 simulated clinicians, each sending one request after an exponential think
  time (mean 3 s: a nurse charting, a doctor reviewing results), a realistic workflow mix.
  It reports p95 latency and the CPU the stack's processes used (from /proc, in cores).

The client runs in this process (asyncio), on the same 2 cores as the stack, so capacity
figures are a floor for the stack, not its ceiling. Bounded: about 45 s per store.

    .venv/bin/python benchmarks/wardehr.py [--stores sqlite,postgres] [--baseline-seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from wardehr import stack
from wardehr.testing import postgres_unavailable, running_stack, world_readable_tempdir

TICKS = os.sysconf("SC_CLK_TCK")


def p(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values`` (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def cpu_ticks(pid: int, with_children: bool = False) -> int:
    """utime+stime (and reaped children's, if asked) of a process, in clock ticks."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = raw[raw.rfind(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def stack_pids(target: Path) -> list[int]:
    """The stack's processes: supervisor, gateway, replicas, and PostgreSQL's whole tree."""
    pids = []
    for service in ("supervisor", "gateway", "replica-a", "replica-b", "database"):
        pid = stack.read_pid(target, service)
        if pid is not None:
            pids.append(pid)
    db = stack.read_pid(target, "database")
    if db is not None:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat[stat.rfind(")") + 2 :].split()[1]) == db:
                    pids.append(int(entry.name))
    return pids


def stack_cpu(target: Path) -> int:
    """Total CPU ticks of the stack right now (PostgreSQL's reaped backends included)."""
    db = stack.read_pid(target, "database")
    return sum(cpu_ticks(pid, with_children=pid == db) for pid in stack_pids(target))


def observation(patient: str) -> dict[str, Any]:
    """A NEWS2 vital sign charted by a nurse."""
    return {
        "resourceType": "Observation",
        "identifier": [{"system": "urn:resildrill:bench", "value": str(uuid.uuid4())}],
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "valueQuantity": {"value": random.randint(55, 110), "unit": "/min"},
    }


def patients() -> list[str]:
    """Patient ids of the seeded population (seed 42)."""
    from wardehr.seed import population

    return [r["id"] for r in population(42) if r["resourceType"] == "Patient"]


async def request(
    session: aiohttp.ClientSession,
    base: str,
    kind: str,
    pid: str,
    sink: list[tuple[str, int, float]],
) -> None:
    """One workflow step; records (kind, status, seconds)."""
    started = time.monotonic()
    try:
        if kind == "read":
            resp = await session.get(f"{base}/Patient/{pid}")
        elif kind == "search-obs":
            resp = await session.get(
                f"{base}/Observation?patient={pid}&category=vital-signs&_sort=-date&_count=10"
            )
        elif kind == "search-meds":
            resp = await session.get(f"{base}/MedicationRequest?patient={pid}&status=active")
        elif kind == "search-ward":
            resp = await session.get(
                f"{base}/Encounter?status=in-progress&_include=Encounter:location&_count=20"
            )
        else:
            resp = await session.post(
                f"{base}/Observation",
                json=observation(pid),
                headers={"Content-Type": "application/fhir+json"},
            )
        await resp.read()
        status = resp.status
    except (aiohttp.ClientError, TimeoutError):
        status = 0
    sink.append((kind, status, time.monotonic() - started))


async def closed_loop(base: str, kinds: list[str], workers: int, seconds: float) -> dict[str, Any]:
    """``workers`` clients back-to-back for ``seconds``: throughput and latency."""
    sink: list[tuple[str, int, float]] = []
    ids = patients()
    end = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=10)

    async def worker(n: int) -> None:
        rng = random.Random(n)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while time.monotonic() < end:
                await request(session, base, rng.choice(kinds), rng.choice(ids), sink)

    started = time.monotonic()
    await asyncio.gather(*(worker(n) for n in range(workers)))
    elapsed = time.monotonic() - started
    ok = [s for _, status, s in sink if 200 <= status < 300]
    return {
        "requests": len(sink),
        "failed": len(sink) - len(ok),
        "per_s": round(len(ok) / elapsed, 1),
        "p50_ms": round(p(ok, 0.5) * 1000, 1),
        "p95_ms": round(p(ok, 0.95) * 1000, 1),
    }


#: The baseline workflow mix: look-ups and searches dominate, charting is the main write.
MIX = ["read"] * 3 + ["search-obs"] * 3 + ["search-meds"] * 2 + ["search-ward"] + ["write"] * 2


async def clinicians(
    base: str, target: Path, users: int, seconds: float, think_s: float
) -> dict[str, Any]:
    """``users`` clinicians, each one request per exponential think time; CPU from /proc."""
    sink: list[tuple[str, int, float]] = []
    ids = patients()
    timeout = aiohttp.ClientTimeout(total=10)
    cpu0, t0 = stack_cpu(target), time.monotonic()
    end = t0 + seconds

    async def clinician(n: int) -> None:
        rng = random.Random(1000 + n)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.sleep(rng.uniform(0, think_s))  # staggered log-ins
            while time.monotonic() < end:
                await request(session, base, rng.choice(MIX), rng.choice(ids), sink)
                await asyncio.sleep(rng.expovariate(1 / think_s))

    await asyncio.gather(*(clinician(n) for n in range(users)))
    elapsed = time.monotonic() - t0
    cores = (stack_cpu(target) - cpu0) / TICKS / elapsed
    ok = [s for _, status, s in sink if 200 <= status < 300]
    return {
        "users": users,
        "think_s": think_s,
        "requests": len(sink),
        "failed": len(sink) - len(ok),
        "per_s": round(len(sink) / elapsed, 1),
        "p50_ms": round(p(ok, 0.5) * 1000, 1),
        "p95_ms": round(p(ok, 0.95) * 1000, 1),
        "max_ms": round(max(ok, default=0) * 1000, 1),
        "stack_cpu_cores": round(cores, 3),
    }


def bench_store(store: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Start one stack, run the three measurements, stop it."""
    with running_stack(folder, store=store) as ehr:  # type: ignore[arg-type]
        base = f"http://{ehr.address('gateway')}"
        reads = ["read", "search-obs", "search-meds"]
        out: dict[str, Any] = {"store": store}
        out["read_capacity"] = asyncio.run(closed_loop(base, reads, 16, args.capacity_seconds))
        out["write_capacity"] = asyncio.run(closed_loop(base, ["write"], 8, args.capacity_seconds))
        time.sleep(1.0)  # let the capacity runs' connections close before measuring CPU
        out["baseline"] = asyncio.run(
            clinicians(base, ehr.target, args.users, args.baseline_seconds, args.think_seconds)
        )
    return out


def main() -> int:
    """Run the benchmark and print the figures (a table, then one JSON line)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--capacity-seconds", type=float, default=6.0)
    parser.add_argument("--baseline-seconds", type=float, default=20.0)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--think-seconds", type=float, default=3.0)
    args = parser.parse_args()
    results = []
    for store in args.stores.split(","):
        if store == "postgres" and (reason := postgres_unavailable()):
            print(f"postgres: skipped ({reason})")
            continue
        started = time.monotonic()
        if store == "postgres":
            with world_readable_tempdir("wardehr-bench-") as folder:
                result = bench_store(store, folder, args)
        else:
            with tempfile.TemporaryDirectory(prefix="wardehr-bench-") as tmp:
                result = bench_store(store, Path(tmp), args)
        result["seconds"] = round(time.monotonic() - started, 1)
        results.append(result)
        rc, wc, b = result["read_capacity"], result["write_capacity"], result["baseline"]
        print(
            f"{store}: reads {rc['per_s']}/s (p95 {rc['p95_ms']} ms, {rc['failed']} failed); "
            f"writes {wc['per_s']}/s (p95 {wc['p95_ms']} ms, {wc['failed']} failed)"
        )
        print(
            f"{store}: {b['users']} clinicians, think {b['think_s']} s: {b['per_s']} req/s, "
            f"p95 {b['p95_ms']} ms, max {b['max_ms']} ms, {b['failed']} failed, "
            f"stack CPU {b['stack_cpu_cores']} cores "
            f"({'OK' if b['stack_cpu_cores'] < 0.5 and b['p95_ms'] < 200 else 'OVER BUDGET'})"
        )
    print(json.dumps({"benchmark": "wardehr", "cpus": os.cpu_count(), "results": results}))
    over = [
        r
        for r in results
        if r["baseline"]["stack_cpu_cores"] >= 0.5 or r["baseline"]["p95_ms"] >= 200
    ]
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
