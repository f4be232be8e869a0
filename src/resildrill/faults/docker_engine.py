"""The Docker engine as the ``docker`` fault kind sees it: connection, selection, CPU limits.

Owns the SDK connection (imported lazily; one cached client per engine address, every call
bounded by its timeout), the choice of containers (labels and names, ``count`` of the running
matches drawn reproducibly from a seed), the prior state a recipe keeps, and the arithmetic of
CPU limits, which Docker's update API makes subtle: NanoCpus cannot be mixed with
CpuQuota/CpuPeriod, and 0 means "leave unchanged", so "no limit" can only be written as -1.
"""

from __future__ import annotations

import math
import os
import random
from datetime import datetime
from pathlib import Path
from typing import Any

from resildrill.errors import ToolFailed
from resildrill.faults.process import proc_start_time

DEFAULT_HOST = "unix:///var/run/docker.sock"
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
#: Docker's own CFS period when a limit is given as NanoCpus (``--cpus``).
DEFAULT_CPU_PERIOD = 100_000

# --- the engine connection -------------------------------------------------------------------

_CLIENTS: dict[tuple[str, str | None, int], Any] = {}


def import_docker() -> Any:
    """The docker SDK, or ToolFailed with the install hint when it is missing."""
    try:
        import docker
    except ImportError:
        raise ToolFailed(
            "the docker fault kind needs the Docker SDK: pip install 'resildrill[docker]'"
        ) from None
    return docker


def engine_address(spec_host: str | None = None) -> str:
    """The engine a fault talks to: its own ``docker_host``, else $DOCKER_HOST, else local."""
    return spec_host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def client_for(docker_host: str, *, timeout_s: float = 10.0, cert_path: str | None = None) -> Any:
    """A (cached) SDK client for one engine, every call bounded by ``timeout_s``."""
    key = (docker_host, cert_path, max(1, math.ceil(timeout_s)))
    if key not in _CLIENTS:
        docker = import_docker()
        env = {"DOCKER_HOST": docker_host}
        if cert_path:
            env.update({"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": cert_path})
        try:
            _CLIENTS[key] = docker.from_env(environment=env, timeout=key[2])
        except docker.errors.DockerException as exc:
            raise ToolFailed(f"cannot reach the Docker engine at {docker_host}: {exc}") from None
    return _CLIENTS[key]


def engine_errors() -> tuple[type[BaseException], ...]:
    """What a failed engine call raises: SDK errors, transport errors, socket errors."""
    docker = import_docker()
    import requests

    return (docker.errors.DockerException, requests.RequestException, OSError)


def inspect_container(client: Any, cid: str) -> dict[str, Any] | None:
    """``docker inspect`` of one container, or None when it no longer exists."""
    docker = import_docker()
    try:
        return dict(client.api.inspect_container(cid))
    except docker.errors.NotFound:
        return None


def update_resources(client: Any, cid: str, body: dict[str, int]) -> None:
    # The SDK's Container.update() has no NanoCpus, so post the documented body ourselves.
    api = client.api
    api._raise_for_status(api._post_json(api._url("/containers/{0}/update", cid), data=body))


def parse_docker_time(text: str) -> float | None:
    """An engine timestamp (RFC 3339 with nanoseconds) as a POSIX time."""
    if not text or text.startswith("0001-"):
        return None
    head, _, frac = text.rstrip("Z").partition(".")
    micro = (frac + "000000")[:6] if frac else "0"
    try:
        stamp = datetime.fromisoformat(f"{head}.{micro}+00:00")
    except ValueError:
        return None
    return stamp.timestamp()


# --- selection ----------------------------------------------------------------------------


def select_containers(
    client: Any, *, name: str | None, labels: dict[str, str], count: int | None, seed: int
) -> tuple[list[dict[str, Any]], int]:
    """The containers to hit (summaries from the engine) and how many matched at all.

    Matches are the running, unpaused containers meeting every condition; ``count`` of them
    are drawn with ``random.Random(seed)`` from the matches sorted by name, so the same
    containers are chosen again for the same seed and the same system.
    """
    filters: dict[str, Any] = {}
    if labels:
        filters["label"] = [f"{k}={v}" for k, v in sorted(labels.items())]
    found = client.api.containers(all=True, filters=filters)
    matches = []
    for c in found:
        names = [n.lstrip("/") for n in c.get("Names") or []]
        if name is not None and name not in names:
            continue
        c["_name"] = names[0] if names else c["Id"][:12]
        matches.append(c)
    running = sorted(
        (c for c in matches if c.get("State") == "running"), key=lambda c: str(c["_name"])
    )
    if count is None:
        return running, len(matches)
    if count > len(running):
        return [], len(matches)
    chosen = random.Random(seed).sample(running, count)
    return sorted(chosen, key=lambda c: str(c["_name"])), len(matches)


def prior_state(attrs: dict[str, Any]) -> dict[str, Any]:
    """What the recipe keeps of a container to put it back: state, limits, pid, mounts."""
    state = attrs.get("State") or {}
    host = attrs.get("HostConfig") or {}
    pid = int(state.get("Pid") or 0)
    return {
        "id": attrs["Id"],
        "name": str(attrs.get("Name", "")).lstrip("/"),
        "image": attrs.get("Image"),
        "status": state.get("Status"),
        "paused": bool(state.get("Paused")),
        "started_at": state.get("StartedAt"),
        "restart_count": int(attrs.get("RestartCount") or 0),
        "restart_policy": (host.get("RestartPolicy") or {}).get("Name") or "no",
        "pid": pid,
        # None when this host cannot see the engine's processes (a remote engine).
        "pid_start_time": proc_start_time(pid) if pid and pid_in_container(pid, attrs) else None,
        "nano_cpus": int(host.get("NanoCpus") or 0),
        "cpu_quota": int(host.get("CpuQuota") or 0),
        "cpu_period": int(host.get("CpuPeriod") or 0),
        "binds": list(host.get("Binds") or []),
    }


def pid_in_container(pid: int, attrs: dict[str, Any]) -> bool:
    """Whether local ``pid`` is this container's process (its cgroup names the container)."""
    try:
        return attrs["Id"] in Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False


# --- CPU limits ------------------------------------------------------------------------------


def throttle_body(
    prior: dict[str, Any], *, cpus: float | None, cpu_quota: int | None
) -> dict[str, int]:
    """The update that applies the throttle, written in the form the prior limit uses.

    Docker refuses to mix NanoCpus with CpuQuota/CpuPeriod, and its update API reads 0 as
    "leave unchanged", so a limit is always changed in the units it already has, and a
    container without a limit is throttled through CpuQuota, the only one of the two that
    can be lifted again (CpuQuota -1: no limit).
    """
    if prior["nano_cpus"] > 0:
        if cpus is not None:
            return {"NanoCpus": round(cpus * 1e9)}
        assert cpu_quota is not None
        return {"NanoCpus": round(cpu_quota / DEFAULT_CPU_PERIOD * 1e9)}
    period = prior["cpu_period"] or DEFAULT_CPU_PERIOD
    quota = cpu_quota if cpu_quota is not None else round((cpus or 0) * period)
    return {"CpuQuota": max(1000, quota)}


def restore_body(prior: dict[str, Any]) -> dict[str, int]:
    """The update that puts the prior limit back ("no limit" included)."""
    if prior["nano_cpus"] > 0:
        return {"NanoCpus": prior["nano_cpus"]}
    # 0 ("never set") cannot be written back: Docker's update reads 0 as "unchanged".
    # -1 is Docker's and the kernel's own "no limit"; the cgroup is as it was.
    return {"CpuQuota": prior["cpu_quota"] if prior["cpu_quota"] != 0 else -1}


def limits_equal(host: dict[str, Any], prior: dict[str, Any]) -> bool:
    """Whether a container's HostConfig has the prior limit (0 and -1 both: no limit)."""
    quota = int(host.get("CpuQuota") or 0)
    prior_quota = prior["cpu_quota"]
    same_quota = quota == prior_quota or (quota <= 0 and prior_quota <= 0)
    return int(host.get("NanoCpus") or 0) == prior["nano_cpus"] and same_quota


def describe_limit(nano_cpus: int, cpu_quota: int, cpu_period: int) -> str:
    """A CPU limit in words: '0.2 CPUs', 'quota 20000/100000 µs' or 'no limit'."""
    if nano_cpus > 0:
        return f"{nano_cpus / 1e9:g} CPUs"
    if cpu_quota > 0:
        return f"quota {cpu_quota}/{cpu_period or DEFAULT_CPU_PERIOD} µs"
    return "no limit"
