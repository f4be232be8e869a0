"""A short heatwave end to end on the ward EHR through the real CLI: plan versus observed.

A watcher thread samples every server's process (pidfile, /proc state) every 5 ms while
``resildrill run`` plays drills/heatwave.yaml six times faster. Each planned observable
change (throttle -> first SIGSTOP seen, shutdown -> process gone, restart -> a new process)
must be observed in the plan's order within max(1 s, 2 model ticks) of its planned time;
every difference (and any change the plan did not have) is printed and kept in
``heat-differences.json`` next to the report. Run with ``-s`` to see the table.

Also: a runner (and its watchdog) killed while heat holds a supervisor frozen is undone by
``resildrill rollback``; network gear gets its toxics through the embedded proxy; a container
gets its CPU quota, stop and start through the Docker engine (skipped without one).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import ManagedProcesses, free_port, wait_http
from tests.support.tiny import (
    SERVICE,
    SUPERVISOR,
    kill_pidfile,
    read_pid,
    resildrill,
    write_drill,
    write_target,
)

from resildrill.drill.loader import load_target
from resildrill.faults.embedded_proxy import ensure_embedded_proxy, stop_embedded_proxy
from resildrill.faults.heat.model import THROTTLED_STATES, simulate
from resildrill.faults.heat.spec import HeatFaultSpec
from resildrill.faults.process import proc_cmdline, proc_state
from resildrill.faults.toxiproxy_client import ToxiproxyClient
from wardehr import stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ("replica-a", "replica-b", "gateway")
SPEEDUP = 6.0  # the example drill's time_scale 60 becomes 360


@pytest.fixture(scope="module")
def ward(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A ward EHR with free ports and a 200 ms restart delay, always stopped afterwards."""
    folder = tmp_path_factory.mktemp("heat")
    path = stack.write_target(folder, restart_delay="200ms")
    try:
        stack.up(path, timeout_s=60)
        yield path
    finally:
        # never leave a frozen process behind, whatever the drill did
        for name in (*SERVERS, "supervisor"):
            pid = stack.read_pid(path, name)
            if pid is not None and proc_state(pid) == "T":
                os.kill(pid, signal.SIGCONT)
        stack.down(path)


def short_drill(target: Path) -> tuple[Path, dict[str, Any]]:
    """drills/heatwave.yaml against ``target``, SPEEDUP times faster, without load."""
    doc = yaml.safe_load((ROOT / "drills" / "heatwave.yaml").read_text())
    doc["name"] = "heatwave-short"
    doc["target"] = str(target)
    doc.pop("load", None)
    doc["slos"] = [s for s in doc["slos"] if "probe" in s]
    doc["phases"] = {"baseline": "3s", "recovery": "8s"}
    doc["stability_window"] = "3s"
    doc["gates"] = {"all_faults_recovered": True}
    fault = doc["faults"][0]
    fault["time_scale"] = fault["time_scale"] * SPEEDUP
    seconds = float(str(fault["duration"]).rstrip("s"))
    fault["duration"] = f"{seconds / SPEEDUP:g}s"
    path = target.parent / "heatwave-short.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path, fault


@dataclass
class Watcher:
    """Samples each server's process every 5 ms; records (monotonic, server, change)."""

    target: Path
    changes: list[tuple[float, str, str, int | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def look(self, name: str) -> tuple[int | None, str]:
        """The server's pid and whether it is 'up', 'stopped' (SIGSTOP) or 'down'."""
        pid = stack.read_pid(self.target, name)
        state = proc_state(pid) if pid is not None else None
        if pid is None or state in (None, "Z", "X"):
            return None, "down"
        return pid, "stopped" if state == "T" else "up"

    def run(self) -> None:
        """Sample until stopped (bounded: at most five minutes)."""
        last: dict[str, tuple[int | None, str]] = {n: self.look(n) for n in SERVERS}
        # a duty cycle stops a process every period: only a stop after 0.5 s without one
        # is a new throttle
        last_stop: dict[str, float] = dict.fromkeys(SERVERS, -1.0)
        deadline = time.monotonic() + 300
        while not self.stop.is_set() and time.monotonic() < deadline:
            now = time.monotonic()
            for name in SERVERS:
                pid, what = self.look(name)
                old_pid, old = last[name]
                if what == "stopped":
                    if now - last_stop[name] > 0.5 or pid != old_pid:
                        self.changes.append((now, name, "stopped", pid))
                    last_stop[name] = now
                elif what == "down" and old != "down":
                    self.changes.append((now, name, "down", old_pid))
                elif what != "down" and (old == "down" or pid != old_pid):
                    self.changes.append((now, name, "up", pid))
                last[name] = (pid, what)
            time.sleep(0.005)


def expected_changes(spec: HeatFaultSpec) -> list[tuple[float, str, str]]:
    """(planned real s from injection, server, observable change) in plan order."""
    out = []
    for e in simulate(spec).events:
        if e.server is None:
            continue
        if e.state in THROTTLED_STATES and e.previous == "normal":
            out.append((e.real_s, e.server, "stopped"))
        elif e.action in ("shutdown", "power-off"):
            out.append((e.real_s, e.server, "down"))
        elif e.action == "restart":
            out.append((e.real_s, e.server, "up"))
    return out


def assert_heat_rendered(run_dir: Path) -> None:
    """The run wrote every report, and report.html draws the heat: the room and each server's
    inlet curve in the temperature panel, and each server's state strip."""
    for name in ("report.html", "junit.xml", "summary.md"):
        assert (run_dir / name).is_file(), f"{name} missing: the heat series did not render"
    html = (run_dir / "report.html").read_text()
    svg = html[html.index('<svg class="timeline"') : html.index("</svg>")]
    assert "Server inlet temperature" in svg
    curves = set(re.findall(r'<path class="series" d="M[^"]+"[^>]*><title>([^<]+)</title>', svg))
    assert {f"{name} inlet °C" for name in SERVERS} | {"room °C"} <= curves, curves
    strips = re.findall(r'<rect class="(\w+)"[^>]*><title>([\w-]+) state: ([\w-]+),', svg)
    states = {(server, state) for _, server, state in strips}
    for name in SERVERS:
        assert (name, "normal") in states and (name, "throttled") in states, name
    # the plan shuts both replicas down: their strips go red (off) at some point
    assert {("replica-a", "shutdown"), ("replica-b", "shutdown")} <= states, states
    assert {server for cls, server, state in strips if cls == "bad"} == {"replica-a", "replica-b"}


def test_short_heatwave_follows_its_plan(ward: Path) -> None:
    """Observed throttles, shutdowns and restarts follow the plan's order and times."""
    drill, fault = short_drill(ward)
    plan = resildrill("plan", str(drill), timeout=30)
    assert plan.returncode == 0, plan.stderr
    assert "cooling_restored" in plan.stdout
    print(plan.stdout)

    watcher = Watcher(ward)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        run = resildrill("run", str(drill), "--yes", "--no-history", "--out",
                         str(ward.parent / "reports"), timeout=120)  # fmt: skip
    finally:
        watcher.stop.set()
        thread.join(5)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "could not render" not in run.stdout + run.stderr, run.stdout + run.stderr
    run_dir = Path(run.stdout.strip().splitlines()[-1])
    report = json.loads((run_dir / "report.json").read_text())
    t0 = report["clock"]["monotonic_t0"]
    (heat,) = report["faults"]
    injected = heat["injected_at_s"]
    assert_heat_rendered(run_dir)

    # the report: actions with model and real times side by side; recovery from cooling
    actions = heat["actions"]
    restored = [a for a in actions if a.get("action") == "cooling_restored"]
    assert len(restored) == 1 and restored[0]["ends_fault"] is True
    assert heat["reverted_at_s"] == pytest.approx(restored[0]["at_s"], abs=1e-3)
    for a in actions:
        if "planned_s" in a:
            assert {"model_s", "model_time", "elapsed_s", "late_s"} <= set(a)
    ups = [a for a in actions if a.get("action") == "up"]
    assert ups and all(a["restart_took_s"] >= 0 for a in ups)
    assert any(a.get("relapse") for a in actions), "replica-b trips again after its restart"
    # what clinicians saw: both replicas off is an outage, and it was measured to its end
    recovery = heat["recovery"]
    assert recovery["outage_s"] > 0 and recovery["recovered"] is True, recovery
    assert recovery["time_to_recover_s"] is not None
    # relapses: the times the drill's SLOs broke again after recovery, read off the report's
    # own per-bucket degraded series (rising edges after recovered_at, to the watch's end)
    degraded = report["timeline"]["series"]["degraded"]["values"]
    start = round(heat["recovered_at_s"] / report["timeline"]["resolution_s"])
    edges = sum(1 for i in range(start + 1, len(degraded)) if degraded[i] and not degraded[i - 1])
    assert recovery["relapses"] == edges, (recovery, edges)
    # throttling (a stop/continue duty cycle) raises a throttled server's latency before
    # it shuts down
    throttled_at = next(
        a["at_s"] for a in actions if a.get("action") == "throttle" and a["server"] == "replica-a"
    )
    shut_at = next(
        a["at_s"] for a in actions if a.get("action") == "shutdown" and a["server"] == "replica-a"
    )
    res = report["timeline"]["resolution_s"]
    latency = report["timeline"]["series"]["probe.replica-a.latency_ms"]["values"]
    base = [v for v in latency[: int(report["baseline_end_s"] / res)] if v is not None]
    hot = [v for v in latency[int(throttled_at / res) : int(shut_at / res)] if v is not None]
    # the baseline's median: one stalled probe on a busy machine must not lift the bar
    print(f"replica-a probe latency: baseline median {statistics.median(base):.1f} ms, "
          f"throttled mean {statistics.mean(hot):.1f} ms")  # fmt: skip
    assert base and hot and statistics.mean(hot) > 2 * statistics.median(base) + 10

    spec = HeatFaultSpec.model_validate({**fault, "at": "0s"})
    tick_real = spec.tick / spec.time_scale
    tolerance = max(1.0, 2 * tick_real)
    planned = expected_changes(spec)
    observed = [(t - t0 - injected, name, what, pid) for t, name, what, pid in watcher.changes]
    used: set[int] = set()
    rows: list[dict[str, Any]] = []
    last_index: dict[str, int] = {}
    for at, name, what in planned:
        match = None
        for i, (t, n, w, _pid) in enumerate(observed):
            if i in used or n != name or w != what or i <= last_index.get(name, -1):
                continue
            if t >= at - tolerance:
                match = i
                break
        row: dict[str, Any] = {"server": name, "change": what, "planned_s": round(at, 3)}
        if match is None:
            row.update(observed_s=None, difference_s=None)
        else:
            used.add(match)
            last_index[name] = match
            row.update(
                observed_s=round(observed[match][0], 3),
                difference_s=round(observed[match][0] - at, 3),
            )
        rows.append(row)
    unplanned = [
        {"server": n, "change": w, "observed_s": round(t, 3), "pid": pid}
        for i, (t, n, w, pid) in enumerate(observed)
        if i not in used and -0.5 < t < spec.duration + 1  # type: ignore[operator]
    ]
    held = [a for a in actions if a.get("action") == "held"]
    differences = {
        "tolerance_s": tolerance,
        "planned_vs_observed": rows,
        "unplanned_changes": unplanned,
        "held_actions": held,
    }
    (run_dir / "heat-differences.json").write_text(json.dumps(differences, indent=2))
    print(f"{'server':<10} {'change':<8} {'planned':>8} {'observed':>9} {'diff':>7}")
    for r in rows:
        obs = "-" if r["observed_s"] is None else f"{r['observed_s']:8.3f}s"
        diff = "-" if r["difference_s"] is None else f"{r['difference_s']:+6.3f}s"
        print(f"{r['server']:<10} {r['change']:<8} {r['planned_s']:7.3f}s {obs:>9} {diff:>7}")
    for u in unplanned:
        print(f"unplanned: {u}")

    assert all(r["observed_s"] is not None for r in rows), rows
    late = [r for r in rows if abs(r["difference_s"]) > tolerance]
    assert not late, late
    # the plan's order holds wherever planned times are further apart than the tolerance
    by_plan = sorted(rows, key=lambda r: r["planned_s"])
    for a, b in itertools.pairwise(by_plan):
        if b["planned_s"] - a["planned_s"] > 2 * tolerance:
            assert a["observed_s"] < b["observed_s"], (a, b)
    # unplanned changes are only the supervisor's restarts of a held server, killed at boot
    for u in unplanned:
        assert u["change"] in ("up", "down") and held, u
    # afterwards: nothing frozen, every server back
    for name in (*SERVERS, "supervisor"):
        pid = stack.read_pid(ward, name)
        assert pid is not None and proc_state(pid) not in (None, "T", "Z"), name


@pytest.fixture
def supervised_web(tmp_path: Path, procs: ManagedProcesses) -> Iterator[tuple[Path, int]]:
    """The tiny HTTP service under tests/support/supervise.py (restart after 300 ms)."""
    port = free_port()
    procs.start(
        str(SUPERVISOR),
        *["--delay", "0.3", "--pidfile", str(tmp_path / "sup.pid"), "--"],
        *["python3", str(SERVICE), "--port", str(port), "--pidfile", str(tmp_path / "web.pid")],
    )
    wait_http(port)
    yield tmp_path, port
    kill_pidfile(tmp_path / "sup.pid")
    kill_pidfile(tmp_path / "web.pid")


def test_killed_runner_mid_heat_is_rolled_back(supervised_web: tuple[Path, int]) -> None:
    """SIGKILL the runner while heat holds the supervisor frozen; rollback resumes it all."""
    folder, port = supervised_web
    write_target(folder, port, recovery="supervisor")
    fault = {
        "id": "hot",
        "kind": "heat",
        "at": "0s",
        "duration": "30s",
        "time_scale": 120,
        "room": {"preset": "chiller-trip", "rate": "high-density", "other_load": 0.9},
        # no 'supervisor:' here: heat finds it as the service's parent process
        "servers": {"web": {"class": "a2-volume"}},
    }
    drill = write_drill(folder, "hot", [fault])
    sup = read_pid(folder / "sup.pid")
    assert sup is not None
    runner = subprocess.Popen(
        [sys.executable, "-m", "resildrill", "run", str(drill), "--yes", "--no-history",
         "--out", str(folder / "reports")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        # planned: throttled at ~1.9 s, caution ~2.8 s, shutdown ~3.3 s after injection (1 s)
        deadline = time.monotonic() + 20
        while proc_state(sup) != "T" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc_state(sup) == "T", "heat froze the supervisor when web shut down"
        time.sleep(0.3)
        web = read_pid(folder / "web.pid")
        assert web is None or proc_state(web) in (None, "Z"), "web is off and not restarted"
        # the runner's watchdog would undo the fault at once: kill it first, to test rollback
        (run_dir,) = list((folder / "reports").iterdir())
        watchdog = read_pid(run_dir / "watchdog.pid")
        if watchdog is not None and "resildrill.runner.watchdog" in (proc_cmdline(watchdog) or ""):
            os.kill(watchdog, signal.SIGKILL)
    finally:
        os.killpg(runner.pid, signal.SIGKILL)
        runner.wait(5)
    time.sleep(0.3)
    assert proc_state(sup) == "T", "the killed runner left the supervisor frozen"
    rollback = resildrill("rollback", str(run_dir / "journal.jsonl"), timeout=30)
    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    assert proc_state(sup) in ("S", "R")
    wait_http(port, timeout=10)  # the supervisor restarted web
    again = resildrill("rollback", str(run_dir / "journal.jsonl"), timeout=30)
    assert again.returncode == 0 and "nothing to do" in again.stdout + again.stderr


def test_overheated_network_gear_adds_toxics_through_the_proxy(
    tmp_path: Path, procs: ManagedProcesses
) -> None:
    """A switch in the hot room: latency, then resets, then its proxy down, then back."""
    port, listen, api = free_port(), free_port(), free_port()
    procs.start(str(SERVICE), "--port", str(port), "--pidfile", str(tmp_path / "web.pid"))
    wait_http(port)
    target = write_target(tmp_path, port, recovery="restart")
    doc = yaml.safe_load(target.read_text())
    doc["toxiproxy"] = {
        "url": f"http://127.0.0.1:{api}",
        "embedded": True,
        "proxies": {"edge": {"listen": f"127.0.0.1:{listen}", "upstream": f"127.0.0.1:{port}"}},
    }
    doc["probes"][0]["http"]["url"] = f"http://127.0.0.1:{listen}/healthz"
    target.write_text(yaml.safe_dump(doc, sort_keys=False))
    fault = {
        "id": "hot",
        "kind": "heat",
        "at": "0s",
        "duration": "5.5s",
        "time_scale": 240,
        "room": {
            "preset": "chiller-trip",
            "rate": "high-density",
            "other_load": 0.9,
            "cooling_restored_at": "12m",
            "recool_rate": 120,
        },
        "servers": {"switch": {"retry_interval": "1m", "network": {"proxy": "edge"}}},
    }
    drill = write_drill(tmp_path, "hot-switch", [fault])
    client = ToxiproxyClient(f"http://127.0.0.1:{api}")
    try:
        ensure_embedded_proxy(load_target(target).spec, tmp_path)
        run = resildrill("run", str(drill), "--yes", "--no-history", "--out",
                         str(tmp_path / "reports"), timeout=60)  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        report = json.loads((Path(run.stdout.strip().splitlines()[-1]) / "report.json").read_text())
        actions = [a for a in report["faults"][0]["actions"] if a.get("server") == "switch"]
        details = " | ".join(f"{a['action']}: {a['detail']}" for a in actions)
        assert [a["action"] for a in actions] == [
            "throttled",
            "warning",
            "caution",
            "shutdown",
            "restart",
        ], details
        assert "latency toxic on edge" in actions[0]["detail"]
        assert actions[1]["detail"] == "unchanged"
        assert "reset_peer toxic on edge" in actions[2]["detail"]
        assert "proxy disabled on edge" in actions[3]["detail"]
        assert "re-enabled proxy edge" in actions[4]["detail"]
        proxy = client.get_proxy("edge")
        assert proxy is not None and proxy["enabled"] and not proxy.get("toxics"), proxy
    finally:
        stop_embedded_proxy(tmp_path)


def _engine() -> Any:
    """An SDK client of the local Docker engine, or a skip saying why there is none."""
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:  # no SDK, no socket, engine down: all mean "skip"
        pytest.skip(f"no Docker engine ({type(exc).__name__}: {exc})")
    return client


def cpu_limit(attrs: dict[str, Any]) -> float | None:
    """A container's CPU limit in CPUs, from NanoCpus or CpuQuota/CpuPeriod; None: unlimited."""
    host = attrs["HostConfig"]
    if host.get("NanoCpus"):
        return float(host["NanoCpus"]) / 1e9
    if (host.get("CpuQuota") or 0) > 0:
        return float(host["CpuQuota"]) / float(host.get("CpuPeriod") or 100_000)
    return None


def test_a_container_server_is_throttled_stopped_and_started(tmp_path: Path) -> None:
    """A container in the hot room gets a CPU quota, is stopped, then started and restored."""
    from resildrill.clock import MonotonicClock
    from resildrill.drill.model import TargetSpec
    from resildrill.faults.base import FaultContext
    from resildrill.faults.heat.backend import HeatFaultBackend
    from wardehr.docker_stack import ensure_image, host_binds

    client = _engine()
    api = client.api
    name = f"rdt-heat-{os.getpid()}-{int(time.monotonic() * 1000) % 100000}"
    host_config = api.create_host_config(network_mode="host", binds=host_binds())
    idle = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
    cid = api.create_container(
        ensure_image(client),
        command=["/usr/bin/python3", "-c", idle + "while True: time.sleep(3600)"],
        name=name,
        labels={"org.resildrill.test": "heat"},
        host_config=host_config,
    )["Id"]
    try:
        api.start(cid)
        target = TargetSpec.model_validate(
            {
                "apiVersion": "resildrill/v1",
                "kind": "Target",
                "name": "heat-docker",
                "environment": "test",
                "probes": [{"name": "none", "tcp": {"host": "127.0.0.1", "port": 9}}],
            }
        )
        ctx = FaultContext(target, tmp_path, "heat-docker", MonotonicClock())
        spec = HeatFaultSpec.model_validate(
            {
                "id": "hot",
                "kind": "heat",
                "at": "0s",
                "duration": "5.5s",
                "time_scale": 240,
                "room": {
                    "preset": "chiller-trip",
                    "rate": "high-density",
                    "other_load": 0.9,
                    "cooling_restored_at": "12m",
                    "recool_rate": 120,
                },
                "servers": {
                    "box": {"retry_interval": "1m", "container": {"select": {"name": name}}}
                },
            }
        )
        backend = HeatFaultBackend()
        assert backend.preflight(spec, ctx) == []
        recipe = backend.inject(spec, backend.prepare(spec, ctx), ctx)
        seen: dict[str, dict[str, Any]] = {}
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < 5.5:
            recipe, actions = backend.advance(spec, recipe, elapsed, ctx)
            for a in actions:
                if a.get("server") == "box":
                    attrs = api.inspect_container(cid)
                    seen.setdefault(a["action"], {"detail": a["detail"], **attrs})
            time.sleep(0.02)
        assert list(seen) == ["throttled", "warning", "caution", "shutdown", "restart"], seen
        assert cpu_limit(seen["throttled"]) == pytest.approx(0.2)
        assert not seen["shutdown"]["State"]["Running"], seen["shutdown"]["detail"]
        assert seen["restart"]["State"]["Running"]
        assert cpu_limit(seen["restart"]) is None
        assert "docker stop" in seen["shutdown"]["detail"]
        backend.revert(recipe)
        assert not backend.is_injected(recipe)
    finally:
        api.remove_container(cid, force=True)
