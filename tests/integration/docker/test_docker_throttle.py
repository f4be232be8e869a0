"""The CPU throttle is real: a busy container's CPU use, from its cgroup accounting, follows it.

The kernel's own accounting (``cpuacct.usage``, or ``cpu.stat`` on cgroup v2) is the
inspector: over 5 s a busy loop throttled to 0.2 CPU uses within 15% of 1 s of CPU, and is
back to full speed once the throttle is reverted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from docker_support import BUSY, SESSION, Containers, cgroup_cpu_usage_s, inspect

from resildrill.clock import MonotonicClock
from resildrill.drill.model import ProbeSpec, TargetSpec, TcpCheck
from resildrill.faults.base import FaultContext
from resildrill.faults.docker import DockerFaultBackend, DockerFaultSpec

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

CTX = FaultContext(
    target=TargetSpec(
        apiVersion="resildrill/v1",
        kind="Target",
        name="docker-throttle",
        environment="test",
        probes=[ProbeSpec(name="none", tcp=TcpCheck(host="127.0.0.1", port=9))],
    ),
    target_dir=Path("."),
    run_id="t",
    clock=MonotonicClock(),
)
QUOTA = 0.2
WINDOW_S = 5.0


def cpu_rate(pid: int, seconds: float) -> float:
    """CPUs used by the process's cgroup over ``seconds`` (1.0 = one core all the time)."""
    u0, t0 = cgroup_cpu_usage_s(pid), time.monotonic()
    time.sleep(seconds)
    u1, t1 = cgroup_cpu_usage_s(pid), time.monotonic()
    return (u1 - u0) / (t1 - t0)


@pytest.fixture
def weighty_parent() -> Iterator[str]:
    """A cgroup parent with a large CPU weight, removed afterwards.

    Docker puts containers under one ``/docker`` group that weighs as much as a single task
    of the host, so on a busy 2-core machine a container cannot get a whole core. The test
    container gets its own parent weighing ten tasks, so "full speed" means a core again.
    """
    parent = f"/rdt-{SESSION}-busy"
    yield parent
    for root in Path("/sys/fs/cgroup").iterdir():
        with contextlib.suppress(OSError):
            (root / parent.lstrip("/")).rmdir()


def weigh(parent: str) -> None:
    """Give the cgroup parent ten times a task's CPU weight (cgroup v1 or v2)."""
    for path, value in (("cpu/{}/cpu.shares", "10240"), ("{}/cpu.weight", "1000")):
        target = Path("/sys/fs/cgroup") / path.format(parent.lstrip("/"))
        if target.exists():
            target.write_text(value)


def test_busy_container_uses_its_quota_then_full_speed_after_revert(
    containers: Containers, weighty_parent: str, record_property: Callable[[str, object], None]
) -> None:
    """Throttled to 0.2 CPU, a busy loop uses 0.2 ± 15% over 5 s; after the revert, full speed."""
    cid = containers.run("busy", command=BUSY, cgroup_parent=weighty_parent)
    weigh(weighty_parent)
    pid = inspect(cid)["State"]["Pid"]
    time.sleep(0.5)  # let the loop get going
    before = cpu_rate(pid, 2.0)
    s = DockerFaultSpec.model_validate(
        {
            "id": "thr",
            "kind": "docker",
            "at": "0s",
            "duration": "5s",
            "action": "throttle",
            "select": {"name": inspect(cid)["Name"].lstrip("/")},
            "cpus": QUOTA,
        }
    )
    backend = DockerFaultBackend()
    recipe = backend.inject(s, backend.prepare(s, CTX), CTX)
    time.sleep(0.3)  # the first CFS periods after the change
    throttled = cpu_rate(pid, WINDOW_S)
    backend.revert(recipe)
    time.sleep(0.3)
    after = cpu_rate(pid, 2.0)
    error = abs(throttled - QUOTA) / QUOTA
    record_property("cpu_before", round(before, 3))
    record_property("cpu_throttled", round(throttled, 3))
    record_property("cpu_after", round(after, 3))
    print(
        f"\nCPU before {before:.3f}, throttled {throttled:.3f} ({error:.1%} off), after {after:.3f}"
    )
    assert error <= 0.15, f"throttled use {throttled:.3f} CPU is {error:.0%} off the {QUOTA} quota"
    # Full speed again: far above the quota and close to what it used before (2 shared cores,
    # so other work on the machine may take a little).
    assert after >= 0.5 and after >= 0.75 * before, (before, after)
    containers.remove_all()  # before the fixture removes the cgroup parent
