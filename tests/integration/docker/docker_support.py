"""Helpers of the docker fault tests: the independent inspector, cgroup accounting, containers.

The inspector is the ``docker`` command line run as a subprocess (``docker inspect``), never
the backend's SDK client nor the journal.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

STATE = Path(os.environ.get("RESILDRILL_DOCKER_STATE", "/tmp/resildrill-docker"))
MARKER = STATE / "unavailable"
TEST_LABEL = "org.resildrill.test"
SESSION = uuid.uuid4().hex[:8]
#: A container command that idles and exits at once on SIGTERM (a PID 1 without a handler
#: would ignore it and make every ``stop`` wait for its full timeout).
IDLE = [
    "/usr/bin/python3",
    "-c",
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
    "print('ready', flush=True)\n"
    "while True: time.sleep(3600)",
]
BUSY = ["/bin/sh", "-c", "while :; do :; done"]

# --- the independent inspector ---------------------------------------------------------------


def inspect(cid: str, *, host: str | None = None) -> dict[str, Any]:
    """``docker inspect`` through the command line: the container's live state."""
    env = {**os.environ, "DOCKER_HOST": host or "unix:///var/run/docker.sock"}
    out = subprocess.run(
        ["docker", "inspect", cid], capture_output=True, text=True, timeout=20, env=env, check=True
    )
    return dict(json.loads(out.stdout)[0])


def wait_for(check: Callable[[], bool], timeout: float = 15.0, step: float = 0.1) -> bool:
    """Poll ``check`` until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()


def cgroup_cpu_usage_s(pid: int) -> float:
    """CPU seconds a process's cgroup has used, from the kernel's own accounting."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpuacct" in controllers.split(","):
            for mount in ("cpuacct", "cpu,cpuacct", "cpuacct,cpu"):
                usage = Path(f"/sys/fs/cgroup/{mount}{path}/cpuacct.usage")
                if usage.exists():
                    return int(usage.read_text()) / 1e9
        if controllers == "":  # cgroup v2
            stat = Path(f"/sys/fs/cgroup{path}/cpu.stat").read_text()
            usec = next(int(v.split()[1]) for v in stat.splitlines() if v.startswith("usage_usec"))
            return usec / 1e6
    raise FileNotFoundError(f"no cpu accounting cgroup for pid {pid}")


class Containers:
    """Creates labelled containers with host networking; removes them by id at teardown."""

    def __init__(self, client: Any, image: str) -> None:
        self.client = client
        self.image = image
        self.ids: list[str] = []

    def run(
        self,
        name: str,
        *,
        labels: dict[str, str] | None = None,
        command: list[str] | None = None,
        restart: str = "no",
        **host: Any,
    ) -> str:
        """Start one container named ``rdt-<session>-<name>``; returns its id."""
        from wardehr.docker_stack import host_binds

        api = self.client.api
        host_config = api.create_host_config(
            network_mode="host",
            binds=host_binds(),
            restart_policy={"Name": restart},
            **host,
        )
        created = api.create_container(
            self.image,
            command=command or IDLE,
            name=f"rdt-{SESSION}-{name}",
            labels={TEST_LABEL: SESSION, **(labels or {})},
            host_config=host_config,
        )
        cid = str(created["Id"])
        self.ids.append(cid)
        api.start(cid)
        if command is None:
            # Until Python has installed its SIGTERM handler, a PID 1 ignores SIGTERM.
            assert wait_for(lambda: b"ready" in api.logs(cid), 20), f"{name} did not start"
        return cid

    def remove_all(self) -> None:
        """Remove every container this fixture created, by id."""
        for cid in self.ids:
            # already gone is fine at teardown
            with contextlib.suppress(Exception):
                self.client.api.remove_container(cid, force=True)


def cgroup_value(pid: int, controller: str, filename: str) -> str:
    """A file of the cgroup (v1) ``controller`` that holds ``pid``, e.g. cpu.cfs_quota_us."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            for mount in (controller, "cpu,cpuacct", "cpuacct,cpu"):
                candidate = Path(f"/sys/fs/cgroup/{mount}{path}/{filename}")
                if candidate.exists():
                    return candidate.read_text().strip()
    raise FileNotFoundError(f"no {controller} cgroup file {filename} for pid {pid}")
