"""Benchmark of the clinician-load timeline (issue 7); prints the figures the issue asks for.

1. Requests per second one Locust worker sustains against a fast local target.
2. Cost of the per-request timeline: the same users with and without the resildrill plugin
   (alternating runs, counted by Locust's own --json stats), as a ratio (target <= 5%).
3. Sample age on arrival, p99 (target <= 500 ms): measured in the parent as the plugin's
   messages arrive through the master's pipe, at full speed.
4. The runner's peak memory for a 10-minute drill: 10 minutes of buckets, at the rate and
   shape measured in (1) from the clinician personas, streamed through the real parent
   code (decode -> LoadDriver.poll -> apply_buckets into a TimeSeries), in a fresh process.

Everything runs on 127.0.0.1 and stops by itself. ``python benchmarks/load.py [--quick]``.

``python benchmarks/load.py --real-drill [--minutes 10]`` measures (4) for real instead: the
bundled ward EHR on free ports, a drill with ``load: {users: 20, workers: 1}`` (the built-in
personas), baseline 1 min, the gateway SIGKILLed at mid-drill (its supervisor restarts it)
and recovery to the end, run by the real CLI (``python -m resildrill run drill.yaml --yes
--no-history``). The runner's /proc/<pid>/status is read while it runs (VmRSS every second,
VmHWM until it exits; Locust master/worker VmHWM too); then the simulation of (4) runs at the
drill's own request rate, for comparison. The stack, the runner and its Locust processes are
stopped at the end, also on Ctrl-C.

Measured (``--real-drill --minutes 10``, 2026-11-26, shared 2-core machine): drill 602 s
(runner wall 610 s), passed, gateway outage 1.3 s; 19,967 requests (39 failed, 6 workflows,
33.2 req/s). Runner VmRSS 47.3 MiB at 1 min, 57.4 MiB at the drill's end: +1.12 MiB/min while
the drill runs (linear). Runner peak (VmHWM) 90.0 MiB, reached right after the drill, in the
integrity read-back of 11,534 writes (VmRSS 79.1 MiB at run_end). Locust peak: master
65.1 MiB, worker 64.7 MiB. The simulation at the same 33.2 req/s peaks at 57.5 MiB: it matches
the drill's end, but misses the read-back's +33 MiB.
Again after the runner began streaming load buckets to timeline.jsonl (same day): 19,944
requests, VmRSS 47.4 -> 57.2 MiB (+1.08 MiB/min), peak 90.1 MiB, timeline.jsonl 2.4 MiB with
19,260 load-bucket lines: streaming costs disk, not memory.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

USERS = 20

_TARGET = r"""
import asyncio, sys
BODY = b'{"resourceType":"Bundle","type":"searchset","total":0}'
RESP = (b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nContent-Length: "
        + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
class P(asyncio.Protocol):
    def connection_made(self, t): self.t, self.buf = t, b""
    def data_received(self, d):
        self.buf += d
        n = self.buf.count(b"\r\n\r\n")
        if n:
            self.buf = self.buf[self.buf.rfind(b"\r\n\r\n") + 4:]
            self.t.write(RESP * n)
async def main():
    srv = await asyncio.get_running_loop().create_server(P, "127.0.0.1", 0, backlog=512)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
asyncio.run(main())
"""

_USER = """
from locust import FastHttpUser, constant, task

class Reader(FastHttpUser):
    wait_time = constant(0)

    @task
    def read(self):
        self.client.get("/Observation?patient=p1", name="bench:read")
"""


#: An idle greenlet waking every 200 ms, like the plugin's flush loop. On its own it
#: changes gevent's scheduling enough to raise req/s of a zero-wait user by tens of percent
#: on this machine, so the "plain" variant carries it too: the A/B then isolates the
#: timeline's own work.
_TICKER = """
import gevent
from locust import events


@events.init.add_listener
def _ticker(environment, **kw):
    def loop():
        while True:
            gevent.sleep(0.2)

    gevent.spawn(loop)
"""


def _start_target() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _TARGET], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, f"http://127.0.0.1:{proc.stdout.readline().strip()}"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_locust(
    folder: Path, host: str, timed: bool, seconds: int, users: int = USERS
) -> dict[str, Any]:
    """One master + one worker, headless, for ``seconds``; Locust's own totals + ages."""
    files = str(folder / ("timed.py" if timed else "plain.py"))
    port = _free_port()
    env = dict(os.environ)
    ages: list[float] = []
    read_fd = write_fd = -1
    if timed:
        env["RESILDRILL_LOAD"] = json.dumps({"t0": time.monotonic()})
        read_fd, write_fd = os.pipe()
    master_env = {**env, "RESILDRILL_STREAM_FD": str(write_fd)} if timed else env
    common = ["-f", files, "--host", host, "--loglevel", "ERROR"]
    master = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "locust",
            *common,
            "--headless",
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            "1",
            "-u",
            str(users),
            "-r",
            str(max(users, 1)),
            "-t",
            f"{seconds}s",
            "--json",
            "--stop-timeout",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=master_env,
        pass_fds=(write_fd,) if timed else (),
        text=True,
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "locust",
            *common,
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    reader = None
    if timed:
        os.close(write_fd)
        from resildrill.load.stream import decode

        def read() -> None:
            with open(read_fd, "rb") as stream:
                for line in stream:
                    msg = decode(line)
                    if msg and msg.get("type") == "buckets" and msg.get("oldest_done"):
                        ages.append(time.monotonic() - float(msg["oldest_done"]))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
    try:
        out, _ = master.communicate(timeout=seconds + 60)
        cpu = _reap_cpu(worker, timeout_s=15)
    finally:
        for p in (master, worker):
            if p.poll() is None:
                p.kill()
                p.wait()
    if reader is not None:
        reader.join(timeout=5)
    stats = json.loads(out[out.index("[") :])
    total = sum(s["num_requests"] for s in stats)
    fails = sum(s["num_failures"] for s in stats)
    return {
        "requests": total,
        "failures": fails,
        "rps": total / seconds,
        "ages": ages,
        "cpu_s": cpu,
        "cpu_us_per_request": cpu / max(1, total) * 1e6,
    }


def _reap_cpu(proc: subprocess.Popen[Any], timeout_s: float) -> float:
    """Wait for ``proc`` (bounded) and return its user+system CPU seconds (wait4 rusage).

    CPU per request is the figure that survives a shared 2-core machine: req/s swings
    with the neighbours' load, the worker's CPU cost of one request does not.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return float(usage.ru_utime + usage.ru_stime)
        time.sleep(0.05)
    raise TimeoutError("locust worker did not exit")


_MICRO = r"""
import json, os, sys, time
os.environ["RESILDRILL_LOAD"] = json.dumps({"t0": time.monotonic()})
import locust  # noqa: F401  (gevent-patched, as in a worker)
from resildrill.load import worker
plugin = worker._Plugin(worker.config())
n, per_flush = int(sys.argv[1]), int(sys.argv[2])
names = ["obs_round:record_vital", "drug_round:administer", "doctor:lab_results"]
from resildrill.load.stream import encode
start = time.process_time()
for i in range(n):
    ctx = {worker.START_KEY: time.monotonic()}
    plugin.on_request("GET", names[i % 3], 12.5 + (i % 97), 120, None, ctx)
    if i % per_flush == 0:
        msg = plugin.bucketer.drain("w", time.monotonic())
        if msg:
            encode(msg)
print((time.process_time() - start) / n * 1e6)
"""


def bench_plugin_cpu(rps: float) -> float:
    """CPU microseconds the timeline adds to one request (listener + flush share), in a
    gevent-patched process: deterministic, unlike req/s on a shared machine."""
    per_flush = max(1, int(rps * 0.2))
    out = subprocess.run(
        [sys.executable, "-c", _MICRO, "300000", str(per_flush)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return float(out.stdout.strip())


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return (ordered[(n - 1) // 2] + ordered[n // 2]) / 2


def bench_throughput(quick: bool) -> dict[str, Any]:
    """Alternate plain/timed runs against the fast target; req/s and the timeline's cost."""
    seconds = 6 if quick else 10
    rounds = 1 if quick else 4
    target, host = _start_target()
    folder = Path(tempfile.mkdtemp(prefix="rd-bench-"))
    (folder / "plain.py").write_text(_TICKER + _USER)
    (folder / "timed.py").write_text(
        "from resildrill.load import worker\nworker.install()\n" + _USER
    )
    plain: list[float] = []
    timed: list[float] = []
    cpu: dict[bool, list[float]] = {False: [], True: []}
    ages: list[float] = []
    try:
        # CPU a worker spends without requests (imports, heartbeats) over the same run:
        # subtracted so the per-request figure is the steady cost of one request.
        idle = {
            t: _run_locust(folder, host, timed=t, seconds=seconds, users=0)["cpu_s"]
            for t in (False, True)
        }
        for k in range(rounds):
            # Alternate which variant goes first, so warm-up and neighbours' load even out.
            for is_timed in (False, True) if k % 2 == 0 else (True, False):
                r = _run_locust(folder, host, timed=is_timed, seconds=seconds)
                assert r["failures"] == 0
                (timed if is_timed else plain).append(r["rps"])
                cpu[is_timed].append((r["cpu_s"] - idle[is_timed]) / r["requests"] * 1e6)
                ages.extend(r["ages"])
    finally:
        target.kill()
        target.wait()
    ages.sort()
    p99 = ages[max(0, int(len(ages) * 0.99) - 1)] if ages else float("nan")
    mp, mt = _median(plain), _median(timed)
    cp, ct = _median(cpu[False]), _median(cpu[True])
    return {
        "plain_rps": plain,
        "timed_rps": timed,
        "median_plain": mp,
        "median_timed": mt,
        "cost": 1 - mt / mp,
        "cpu_plain_us": cp,
        "cpu_timed_us": ct,
        "cpu_cost": 1 - cp / ct,
        "age_p99_s": p99,
        "age_max_s": ages[-1] if ages else None,
        "messages": len(ages),
        "seconds": seconds,
    }


_MEMORY = r"""
import json, random, resource, sys, time
from pathlib import Path
from resildrill.drill.model import LoadSpec
from resildrill.load import LoadDriver, apply_buckets
from resildrill.load.stream import Bucketer, decode, encode
from resildrill.observe.metrics import TimeSeries

rate, workers, minutes = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
keep_series = sys.argv[4] == "1"
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
workflows = ["obs_round", "drug_round", "doctor", "pharmacist", "ed_triage", "bed_manager"]
share = [4, 3, 3, 1, 1, 1]
t0 = 1000.0
driver = LoadDriver(LoadSpec(), host="http://127.0.0.1:9", run_dir=Path("/tmp"),
                    monotonic_t0=t0)
series = TimeSeries()
rng = random.Random(1)
flush = 0.2
steps = int(minutes * 60 / flush)
per_flush = rate * flush / workers
for k in range(steps):
    now = t0 + (k + 1) * flush
    for w in range(workers):
        b = Bucketer(t0)
        for _ in range(int(per_flush)):
            wf = rng.choices(workflows, share)[0]
            b.add(wf, now - rng.uniform(0.0, 0.3), rng.lognormvariate(-4, 0.7), True)
        msg = decode(encode(b.drain(f"w{w}", now)))
        msg["arrived"] = now + 0.01
        driver._queue.append(msg)
    buckets = driver.poll()
    if keep_series:
        apply_buckets(series, buckets)
total = sum(t.requests for t in driver.totals.values())
print(json.dumps({"buckets": series.n_buckets, "requests": total,
                  "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_start_mb": rss0 / 1024}))
"""


def bench_memory(rate: float, workers: int, minutes: float, keep_series: bool) -> dict[str, Any]:
    """Peak memory of a fresh parent process fed ``minutes`` of buckets at ``rate`` req/s."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _MEMORY,
            str(rate),
            str(workers),
            str(minutes),
            "1" if keep_series else "0",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    return dict(json.loads(out.stdout))


# --- the real drill (--real-drill) ------------------------------------------------------

_RSS_KEYS = ("VmRSS", "VmHWM")


def _mem_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in KiB from /proc/<pid>/status; {} once it is gone."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in _RSS_KEYS:
                    out[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return {}
    return out


def _locust_children(pid: int) -> dict[int, str]:
    """Locust processes whose parent is ``pid``: pid -> "master" or "worker"."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("PPid:")), "")
        if ppid != str(pid) or b"locust" not in argv:
            continue
        found[int(entry.name)] = "master" if b"--master" in argv else "worker"
    return found


def _is_locust(pid: int) -> bool:
    try:
        return b"locust" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False


def _drill_doc(target: Path, minutes: float) -> dict[str, Any]:
    """20 clinicians (1 worker, built-in personas); the gateway is SIGKILLed at mid-drill and
    its supervisor restarts it; baseline + kill offset + recovery = ``minutes``."""
    total = minutes * 60
    baseline = min(60.0, total * 0.2)
    kill_at = total / 2 - baseline
    return {
        "apiVersion": "resildrill/v1",
        "kind": "Drill",
        "name": "bench-real-drill",
        "target": str(target),
        "slos": [{"probe": "gateway", "expect": "success_rate >= 0.99"}],
        "phases": {"baseline": f"{baseline:g}s", "recovery": f"{total - total / 2:g}s"},
        "load": {"users": USERS, "workers": 1},
        "faults": [
            {
                "id": "gw",
                "kind": "process",
                "service": "gateway",
                "action": "kill",
                "at": f"{kill_at:g}s",
            }
        ],
    }


def real_drill(minutes: float) -> dict[str, Any]:
    """Run a real drill with the CLI against the ward EHR; sample the runner's memory."""
    import yaml

    from wardehr import stack

    folder = Path(tempfile.mkdtemp(prefix="rd-realdrill-"))
    out = folder / "reports"
    target = stack.write_target(folder / "ward", restart_delay="1s")
    drill = folder / "drill.yaml"
    drill.write_text(yaml.safe_dump(_drill_doc(target, minutes), sort_keys=False))
    samples: list[tuple[float, int]] = []  # (seconds since launch, VmRSS KiB)
    hwm = hwm_at_end = rss_at_end = 0
    end_t = 0.0
    locust: dict[int, str] = {}
    locust_hwm: dict[int, int] = {}
    runner: subprocess.Popen[bytes] | None = None
    try:
        stack.up(target)
        started = time.monotonic()
        cli = [sys.executable, "-m", "resildrill", "run", str(drill), "--yes", "--no-history"]
        # Output to files, not pipes: ten minutes of status lines must never block the runner.
        with (folder / "stdout").open("w") as so, (folder / "stderr").open("w") as se:
            runner = subprocess.Popen(
                [*cli, "--out", str(out)],
                stdout=so,
                stderr=se,
                start_new_session=True,  # a Ctrl-C here reaches the runner as our SIGINT, below
            )
        journal: Path | None = None
        ended = False
        next_sample = started
        while runner.poll() is None:
            now = time.monotonic()
            mem = _mem_kib(runner.pid)
            if not mem:
                break
            hwm = max(hwm, mem.get("VmHWM", 0))
            if now >= next_sample:
                samples.append((now - started, mem.get("VmRSS", 0)))
                next_sample += 1.0
                for pid, role in _locust_children(runner.pid).items():
                    locust.setdefault(pid, role)
                for pid in locust:
                    kib = _mem_kib(pid).get("VmHWM")
                    if kib:
                        locust_hwm[pid] = max(locust_hwm.get(pid, 0), kib)
                if journal is None:
                    journal = next(out.glob("*/journal.jsonl"), None)
            if not ended and journal is not None and '"run_end"' in journal.read_text():
                ended = True
                hwm_at_end, rss_at_end = hwm, mem.get("VmRSS", 0)
                end_t = now - started
            # after run_end (reports being written) read often: VmHWM just before exit
            time.sleep(0.05 if ended else 0.2)
        runner.wait(timeout=60)
        wall = time.monotonic() - started
    finally:
        if runner is not None and runner.poll() is None:
            runner.send_signal(signal.SIGINT)  # the runner reverts and stops its Locust
            try:
                runner.wait(timeout=60)
            except subprocess.TimeoutExpired:
                runner.kill()
                runner.wait()
        for pid in locust:  # a killed runner leaves none behind; make sure of it
            if _is_locust(pid):
                os.kill(pid, signal.SIGKILL)
        stack.down(target)
    stdout = (folder / "stdout").read_text().strip()
    run_dir = Path(stdout.splitlines()[-1]) if stdout else None
    if run_dir is None or not (run_dir / "report.json").exists():
        tail = (folder / "stderr").read_text()[-2000:]
        raise RuntimeError(f"the drill wrote no report (exit {runner.returncode}): {tail}")
    report = json.loads((run_dir / "report.json").read_text())
    load = report.get("load") or {}

    (folder / "rss.tsv").write_text("".join(f"{t:.2f}\t{k}\n" for t, k in samples))

    def rss_at(t: float) -> int:
        return min(samples, key=lambda s: abs(s[0] - t))[1]

    # The drill's t0 since launch, from the 'end' mark (t0-relative) and when run_end was seen.
    end_mark = next((m["at_s"] for m in report["timeline"]["marks"] if m["kind"] == "end"), None)
    seen = end_t or wall  # run_end missed (exited within 0.2 s): an upper bound
    t0 = max(0.0, seen - end_mark) if end_mark is not None else 0.0
    drill_end = t0 + float(report.get("duration_s") or 0.0)

    return {
        "exit_code": runner.returncode,
        "outcome": report.get("outcome"),
        "duration_s": report.get("duration_s"),
        "wall_s": wall,
        "requests": load.get("requests"),
        "failures": load.get("failures"),
        "workflows": len(load.get("by_workflow") or {}),
        "outage_s": (report.get("summary") or {}).get("outage_s"),
        "peak_rss_mib": hwm / 1024,
        "hwm_at_run_end_mib": hwm_at_end / 1024,
        "rss_at_run_end_mib": rss_at_end / 1024,
        "t0_s": t0,
        "rss_1min_mib": rss_at(t0 + 60) / 1024,
        "rss_drill_end_mib": rss_at(drill_end - 1) / 1024,
        "drill_end_s": drill_end,
        "end_t_s": end_t or samples[-1][0],
        "writes": (report.get("integrity") or {}).get("writes_acknowledged"),
        "rss_tsv": str(folder / "rss.tsv"),
        "rss_max_sampled_mib": max(s[1] for s in samples) / 1024,
        "samples": samples,
        "locust": {
            role: max((k for p, k in locust_hwm.items() if locust[p] == role), default=0) / 1024
            for role in ("master", "worker")
        },
        "run_dir": str(run_dir),
        # crash-safe copy of everything measured (probe samples, marks, load buckets)
        "timeline_mib": (run_dir / "timeline.jsonl").stat().st_size / 2**20,
        "timeline_load_lines": sum(
            1 for line in (run_dir / "timeline.jsonl").open() if line.startswith('{"t":"lb"')
        ),
    }


def print_real_drill(minutes: float) -> None:
    """The real drill's figures, then the simulation at the drill's own request rate."""
    r = real_drill(minutes)
    print(
        f"REAL drill ({minutes:g} min planned, {USERS} users, 1 worker, built-in personas, "
        f"gateway SIGKILLed at mid-drill) via 'python -m resildrill run':"
    )
    print(
        f"  outcome {r['outcome']} (exit {r['exit_code']}), duration {r['duration_s']:.0f} s "
        f"(runner wall {r['wall_s']:.0f} s), gateway outage {r['outage_s']} s"
    )
    rate = (r["requests"] or 0) / max(1.0, r["duration_s"] or 1.0)
    print(
        f"  requests {r['requests']} ({r['failures']} failed, {r['workflows']} workflows), "
        f"{rate:.1f} req/s"
    )
    span = max(1e-9, (r["drill_end_s"] - r["t0_s"] - 60) / 60)
    growth = (r["rss_drill_end_mib"] - r["rss_1min_mib"]) / span
    print(
        f"  runner peak RSS (VmHWM): {r['peak_rss_mib']:.1f} MiB (VmHWM at run_end "
        f"{r['hwm_at_run_end_mib']:.1f} MiB; max sampled VmRSS {r['rss_max_sampled_mib']:.1f} MiB)"
    )
    print(
        f"  runner VmRSS at 1 min {r['rss_1min_mib']:.1f} MiB, at the drill's end "
        f"{r['rss_drill_end_mib']:.1f} MiB: {growth:+.2f} MiB/min while the drill runs"
    )
    print(
        f"  after the drill (stop Locust, read back {r['writes']} writes): VmRSS at run_end "
        f"{r['rss_at_run_end_mib']:.1f} MiB; the reports are written after it"
    )
    rss = r["samples"]
    marks = [
        f"{m}m {min(rss, key=lambda s: abs(s[0] - r['t0_s'] - 60 * m))[1] / 1024:.1f}"
        for m in range(1, int((r["drill_end_s"] - r["t0_s"]) // 60) + 1)
    ]
    print(f"  runner VmRSS each minute of the drill (MiB): {', '.join(marks)}")
    print(f"  per-second VmRSS (s since launch, KiB): {r['rss_tsv']}")
    print(
        f"  Locust peak RSS (VmHWM): master {r['locust']['master']:.1f} MiB, "
        f"worker {r['locust']['worker']:.1f} MiB"
    )
    print(
        f"  timeline.jsonl (what a partial report is rebuilt from): {r['timeline_mib']:.1f} MiB, "
        f"{r['timeline_load_lines']} load-bucket lines"
    )
    print(f"  run folder: {r['run_dir']}")
    print(f"SIMULATED ({minutes:g} min of buckets at the drill's {rate:.1f} req/s, 1 worker):")
    for keep in (False, True):
        mem = bench_memory(rate=rate, workers=1, minutes=minutes, keep_series=keep)
        what = "driver + TimeSeries" if keep else "driver only (poll)"
        print(
            f"  {what:20}: peak {mem['rss_peak_mb']:6.1f} MB (start "
            f"{mem['rss_start_mb']:.1f} MB; {mem['requests']} requests)"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one short round (smoke test)")
    ap.add_argument(
        "--real-drill",
        action="store_true",
        help="measure the runner's memory in a real drill on the ward EHR (see the docstring)",
    )
    ap.add_argument("--minutes", type=float, default=10.0, help="--real-drill: drill length")
    args = ap.parse_args()
    started = time.monotonic()
    if args.real_drill:
        print_real_drill(args.minutes)
        print(f"benchmark took {time.monotonic() - started:.0f} s")
        return
    tp = bench_throughput(args.quick)
    print(f"throughput (1 worker, {USERS} users, fast local target, {tp['seconds']} s runs)")
    print(
        f"  plain Locust*    req/s: {', '.join(f'{r:.0f}' for r in tp['plain_rps'])}"
        f"  median {tp['median_plain']:.0f}"
    )
    print(
        f"  with timeline    req/s: {', '.join(f'{r:.0f}' for r in tp['timed_rps'])}"
        f"  median {tp['median_timed']:.0f}"
    )
    extra = bench_plugin_cpu(tp["median_timed"])
    base = tp["cpu_plain_us"]
    cost = extra / (base + extra)
    print(
        f"  worker CPU per request (less idle CPU): plain {base:.0f} us, with timeline "
        f"{tp['cpu_timed_us']:.0f} us (medians of the A/B runs)"
    )
    print(f"  timeline's own CPU per request (listener + flush, 300k calls): {extra:.2f} us")
    verdict = "ok" if cost <= 0.05 else "OVER TARGET"
    print(
        f"  timeline cost: {cost * 100:.1f}% fewer req/s for a CPU-bound worker "
        f"(extra / (plain + extra); target <= 5%): {verdict}"
    )
    print(
        f"  A/B wall-clock req/s ratio: {tp['cost'] * 100:+.1f}% (a shared 2-core machine "
        "swings req/s by 2x between runs; the CPU figures are the reliable ones)"
    )
    print("  * plain Locust with an idle 200 ms greenlet, as the plugin's flush loop (see _TICKER)")
    age = tp["age_p99_s"] * 1000
    print(
        f"sample age on arrival: p99 {age:.0f} ms, max {tp['age_max_s'] * 1000:.0f} ms over "
        f"{tp['messages']} messages (target p99 <= 500 ms): {'ok' if age <= 500 else 'OVER'}"
    )
    minutes = 2.0 if args.quick else 10.0
    print(f"runner peak memory (RSS), {minutes:g}-minute drill simulated through the parent code:")
    for rate, workers in ((tp["median_timed"], 1), (200.0, 4)):
        for keep in (False, True):
            mem = bench_memory(rate=rate, workers=workers, minutes=minutes, keep_series=keep)
            what = "driver + TimeSeries" if keep else "driver only (poll)"
            print(
                f"  {rate:5.0f} req/s, {workers} worker(s), {what:20}: peak "
                f"{mem['rss_peak_mb']:6.1f} MB (start {mem['rss_start_mb']:.1f} MB; "
                f"{mem['requests']} requests, {mem['buckets']} buckets/workflow)"
            )
    print(f"benchmark took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
