"""Benchmark of the docker fault kind (issue 5); prints the figures the issue asks for.

1. Setup costs: the skeleton image import and a container start on this engine.
2. Throttle accuracy: a busy container throttled to 0.2 and 0.5 CPU for 5 s, its CPU use read
   from its cgroup accounting, over several trials (the issue asks for within 15%).
3. Recovery of a crashed gateway: the containerised ward EHR, the gateway crashed by a real
   drill (``resildrill run``), its return left to Docker's restart policy; per trial, when the
   engine had the container running again and when the clinical probe recovered.

Needs a running engine (``scripts/start-docker.sh``). Everything binds 127.0.0.1 and every
container it creates is removed by id. ``python benchmarks/containers.py [--trials N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from resildrill.clock import MonotonicClock
from resildrill.drill.model import ProbeSpec, TargetSpec, TcpCheck
from resildrill.faults.base import FaultContext
from resildrill.faults.docker import DockerFaultBackend, DockerFaultSpec
from resildrill.faults.docker_engine import client_for, engine_address
from wardehr.docker_stack import down, ensure_image, host_binds, up, write_target

CTX = FaultContext(
    target=TargetSpec(
        apiVersion="resildrill/v1",
        kind="Target",
        name="bench",
        environment="test",
        probes=[ProbeSpec(name="none", tcp=TcpCheck(host="127.0.0.1", port=9))],
    ),
    target_dir=Path("."),
    run_id="bench",
    clock=MonotonicClock(),
)


def cpu_seconds(pid: int) -> float:
    """CPU seconds of the process's cgroup (v1 cpuacct.usage or v2 cpu.stat)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpuacct" in controllers.split(","):
            for mount in ("cpuacct", "cpu,cpuacct"):
                usage = Path(f"/sys/fs/cgroup/{mount}{path}/cpuacct.usage")
                if usage.exists():
                    return int(usage.read_text()) / 1e9
        if controllers == "":
            stat = Path(f"/sys/fs/cgroup{path}/cpu.stat").read_text()
            return next(int(v.split()[1]) for v in stat.splitlines() if "usage_usec" in v) / 1e6
    raise FileNotFoundError(pid)


def rate(pid: int, seconds: float) -> float:
    """CPUs used over ``seconds``."""
    u0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - u0) / (time.monotonic() - t0)


def throttle_trials(client: Any, image: str, trials: int) -> None:
    """Figure 2."""
    api = client.api
    parent = f"/rd-bench-{int(time.time())}"
    created = api.create_container(
        image,
        command=["/bin/sh", "-c", "while :; do :; done"],
        labels={"org.resildrill.bench": "throttle"},
        host_config=api.create_host_config(
            network_mode="none", binds=host_binds(), cgroup_parent=parent
        ),
    )
    cid = created["Id"]
    try:
        api.start(cid)
        # Weigh the container's parent like ten host tasks, so "full speed" is a whole core.
        shares = Path(f"/sys/fs/cgroup/cpu{parent}/cpu.shares")
        if shares.exists():
            shares.write_text("10240")
        name = api.inspect_container(cid)["Name"].lstrip("/")
        pid = api.inspect_container(cid)["State"]["Pid"]
        print(f"2. throttle accuracy over 5 s (full speed before: {rate(pid, 2):.3f} CPU)")
        for cpus in (0.2, 0.5):
            errors = []
            for _ in range(trials):
                spec = DockerFaultSpec.model_validate(
                    {
                        **{"id": "t", "kind": "docker", "at": "0s", "duration": "5s"},
                        **{"action": "throttle", "select": {"name": name}, "cpus": cpus},
                    }
                )
                backend = DockerFaultBackend()
                recipe = backend.inject(spec, backend.prepare(spec, CTX), CTX)
                time.sleep(0.3)
                used = rate(pid, 5.0)
                backend.revert(recipe)
                errors.append((used - cpus) / cpus)
                time.sleep(0.5)
            worst = max(abs(e) for e in errors)
            print(
                f"   cpus {cpus}: error mean {statistics.mean(errors):+.1%}, "
                f"worst {worst:.1%} over {trials} trials (limit 15%)"
            )
        print(f"   after the last revert: {rate(pid, 2):.3f} CPU")
    finally:
        api.remove_container(cid, force=True)
        for root in Path("/sys/fs/cgroup").iterdir():
            with contextlib.suppress(OSError):
                (root / parent.lstrip("/")).rmdir()


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def crash_trials(trials: int) -> None:
    """Figure 3."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ports = {k: free_port() for k in ("gateway", "replica-a", "replica-b")}
        target = write_target(folder, ports=ports, name="rd-bench-ward", project="rd-bench-ward")
        drill = {
            "apiVersion": "resildrill/v1",
            "kind": "Drill",
            "name": "bench-gateway-crash",
            "target": "target.yaml",
            "slos": [{"probe": "gateway", "expect": "success_rate >= 0.99"}],
            "slo_window": "500ms",
            "stability_window": "2s",
            "phases": {"baseline": "2s", "recovery": "6s"},
            "faults": [
                {
                    "id": "gateway-crash",
                    "kind": "docker",
                    "action": "crash",
                    "select": {"compose": {"project": "rd-bench-ward", "service": "gateway"}},
                    "at": "0s",
                }
            ],
        }
        (folder / "drill.yaml").write_text(yaml.safe_dump(drill))
        started = time.monotonic()
        up(target)
        took = time.monotonic() - started
        print(f"3. gateway crash, restart policy 'always' (stack up in {took:.1f} s)")
        engine, probe = [], []
        try:
            for i in range(trials):
                out = folder / f"reports-{i}"
                subprocess.run(
                    [sys.executable, "-m", "resildrill", "run", str(folder / "drill.yaml"),
                     "--out", str(out)],
                    capture_output=True, timeout=120, check=False,
                )  # fmt: skip
                report = json.loads(next(out.glob("*/report.json")).read_text())
                fault = report["faults"][0]
                back = [a for a in fault["actions"] if a["action"] == "container_restarted"]
                engine.append(back[0]["started_after_s"] if back else float("nan"))
                probe.append(fault["recovery"]["time_to_recover_s"] or float("nan"))
                print(
                    f"   trial {i + 1}: container running again after {engine[-1]:.3f} s, "
                    f"clinical probe recovered after {probe[-1]:.3f} s "
                    f"(outage {fault['recovery']['outage_s']} s)"
                )
        finally:
            down(target)
        print(
            f"   median: engine {statistics.median(engine):.3f} s, "
            f"probe {statistics.median(probe):.3f} s over {trials} trials"
        )


def setup_costs(client: Any) -> str:
    """Figure 1; returns the image tag."""
    started = time.monotonic()
    image = ensure_image(client)
    took = time.monotonic() - started
    api = client.api
    started = time.monotonic()
    created = api.create_container(
        image,
        command=["/usr/bin/true"],
        host_config=api.create_host_config(network_mode="none", binds=host_binds()),
    )
    api.start(created["Id"])
    api.wait(created["Id"], timeout=30)
    run = time.monotonic() - started
    api.remove_container(created["Id"], force=True)
    print(f"1. image {image} ready in {took:.2f} s; a container created+run+exited in {run:.2f} s")
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    client = client_for(engine_address(), timeout_s=30)
    image = setup_costs(client)
    throttle_trials(client, image, args.trials)
    crash_trials(args.trials)


if __name__ == "__main__":
    main()
