"""Every docker action and its revert against a real engine, checked by ``docker inspect``.

The backend is driven the way the runner drives it (prepare -> inject -> revert, with
``is_injected``); what happened is read with the ``docker`` command line, never the recipe.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from docker_support import SESSION, Containers, cgroup_value, inspect, wait_for

from resildrill.clock import MonotonicClock
from resildrill.drill.model import ProbeSpec, TargetSpec, TcpCheck
from resildrill.errors import InjectionFailed
from resildrill.faults.base import FaultContext
from resildrill.faults.docker import DockerFaultBackend, DockerFaultSpec

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

TARGET = TargetSpec(
    apiVersion="resildrill/v1",
    kind="Target",
    name="docker-tests",
    environment="test",
    probes=[ProbeSpec(name="none", tcp=TcpCheck(host="127.0.0.1", port=9))],
)
CTX = FaultContext(target=TARGET, target_dir=Path("."), run_id="t", clock=MonotonicClock())


def spec(**fields: Any) -> DockerFaultSpec:
    """A docker fault spec as a drill file would give it."""
    doc = {"id": "f", "kind": "docker", "at": "0s", **fields}
    return DockerFaultSpec.model_validate(doc)


def inject(s: DockerFaultSpec) -> tuple[DockerFaultBackend, dict[str, Any]]:
    """prepare + inject, as the runner does (the recipe is what it would journal)."""
    backend = DockerFaultBackend()
    recipe = backend.prepare(s, CTX)
    return backend, backend.inject(s, recipe, CTX)


def name_of(cid: str) -> str:
    """The container's name as the engine reports it."""
    return str(inspect(cid)["Name"]).lstrip("/")


def up(cid: str, **kw: str) -> bool:
    """Running for real: Docker reports Running=true while a restart is still pending."""
    state = inspect(cid, **kw)["State"]
    return bool(state["Running"] and not state["Restarting"] and state["Pid"])


def test_crash_is_a_real_crash_and_the_restart_policy_brings_it_back(
    containers: Containers,
) -> None:
    """crash SIGKILLs State.Pid from the host; Docker's restart policy restarts the container."""
    cid = containers.run("crash", restart="always")
    before = inspect(cid)
    s = spec(action="crash", select={"name": name_of(cid)})
    backend, recipe = inject(s)
    assert backend.self_heals(s, CTX)
    assert recipe["containers"][0]["crashed_via"] == "host"
    # Docker sets the new Pid a moment before the new StartedAt: wait for both.
    assert wait_for(
        lambda: (
            up(cid)
            and inspect(cid)["RestartCount"] >= 1
            and inspect(cid)["State"]["StartedAt"] != before["State"]["StartedAt"]
        ),
        15,
    )
    assert inspect(cid)["State"]["Pid"] != before["State"]["Pid"]
    # advance() measures when the restart policy brought it back.
    recipe2, actions = backend.advance(s, recipe, 1.0, CTX)
    assert actions and actions[0]["action"] == "container_restarted"
    assert 0 <= actions[0]["started_after_s"] < 10
    assert not backend.is_injected(recipe2)
    assert "restarted by its restart policy" in backend.revert(recipe2)


def test_api_kill_turns_the_restart_policy_off_and_revert_starts_it(
    containers: Containers,
) -> None:
    """kill through the API stops the container for good (Docker's rule); revert starts it."""
    cid = containers.run("kill", restart="always")
    s = spec(action="kill", select={"name": name_of(cid)}, duration="1s")
    backend, recipe = inject(s)
    assert wait_for(lambda: not inspect(cid)["State"]["Running"], 10)
    time.sleep(1.5)  # long enough for a restart policy that would act (first delay 100 ms)
    state = inspect(cid)
    assert not state["State"]["Running"] and state["RestartCount"] == 0
    assert state["State"]["ExitCode"] == 137
    assert backend.is_injected(recipe)
    assert "started" in backend.revert(recipe)
    assert wait_for(lambda: up(cid), 10)
    assert not backend.is_injected(recipe)


def test_stop_then_revert_starts_it(containers: Containers) -> None:
    """stop sends SIGTERM through the API (exit 0); revert starts the container again."""
    cid = containers.run("stop", restart="unless-stopped")
    s = spec(action="stop", select={"name": name_of(cid)}, duration="1s", stop_timeout="5s")
    backend, recipe = inject(s)
    state = inspect(cid)["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 0
    assert not backend.self_heals(s, CTX)
    backend.revert(recipe)
    assert wait_for(lambda: inspect(cid)["State"]["Status"] == "running", 10)
    assert backend.revert(recipe).endswith("running")  # idempotent


def test_pause_then_unpause(containers: Containers) -> None:
    """pause freezes the container (State.Paused); revert unpauses it, idempotently."""
    cid = containers.run("pause")
    s = spec(action="pause", select={"name": name_of(cid)}, duration="1s")
    backend, recipe = inject(s)
    state = inspect(cid)["State"]
    assert state["Paused"] is True and state["Status"] == "paused"
    assert backend.is_injected(recipe)
    assert "unpaused" in backend.revert(recipe)
    state = inspect(cid)["State"]
    assert state["Paused"] is False and state["Status"] == "running"
    assert backend.revert(recipe) == "nothing to do"


def test_restart_through_the_api(containers: Containers) -> None:
    """restart stops and starts the container; it is running again with a new start time."""
    cid = containers.run("restart", restart="always")
    before = inspect(cid)["State"]
    s = spec(action="restart", select={"name": name_of(cid)}, stop_timeout="5s")
    backend, recipe = inject(s)
    after = inspect(cid)["State"]
    assert after["Running"] and after["StartedAt"] != before["StartedAt"]
    assert after["Pid"] != before["Pid"]
    assert backend.self_heals(s, CTX) and not backend.is_injected(recipe)


def limits(cid: str) -> tuple[int, int, int]:
    """(NanoCpus, CpuQuota, CpuPeriod) as the engine reports them."""
    host = inspect(cid)["HostConfig"]
    return int(host["NanoCpus"]), int(host["CpuQuota"]), int(host["CpuPeriod"])


def cfs_quota(cid: str) -> int:
    """The kernel's CFS quota of the container's cgroup (-1: no limit)."""
    return int(cgroup_value(inspect(cid)["State"]["Pid"], "cpu", "cpu.cfs_quota_us"))


def test_throttle_without_a_prior_limit_restores_no_limit(containers: Containers) -> None:
    """An unlimited container is throttled by CpuQuota and returned to 'no limit'."""
    cid = containers.run("thr-unset")
    assert limits(cid) == (0, 0, 0) and cfs_quota(cid) == -1
    s = spec(action="throttle", select={"name": name_of(cid)}, cpus=0.2, duration="1s")
    backend, recipe = inject(s)
    assert limits(cid) == (0, 20000, 0) and cfs_quota(cid) == 20000
    assert backend.is_injected(recipe)
    assert "no limit" in backend.revert(recipe)
    nano, quota, period = limits(cid)
    # Docker's update API reads 0 as "unchanged", so "never set" comes back as -1 ("no
    # limit" to Docker and the kernel); the cgroup is exactly as before.
    assert (nano, period) == (0, 0) and quota in (0, -1)
    assert cfs_quota(cid) == -1
    assert not backend.is_injected(recipe)


def test_throttle_restores_prior_nano_cpus_exactly(containers: Containers) -> None:
    """A container started with --cpus 1.5 is throttled to 0.25 and given 1.5 back exactly."""
    cid = containers.run("thr-nano", nano_cpus=1_500_000_000)
    s = spec(action="throttle", select={"name": name_of(cid)}, cpus=0.25, duration="1s")
    backend, recipe = inject(s)
    assert limits(cid) == (250_000_000, 0, 0) and cfs_quota(cid) == 25000
    backend.revert(recipe)
    assert limits(cid) == (1_500_000_000, 0, 0) and cfs_quota(cid) == 150000


def test_throttle_restores_prior_quota_and_period_exactly(containers: Containers) -> None:
    """A container with quota 40000/50000 µs is throttled in its own period and restored."""
    cid = containers.run("thr-quota", cpu_quota=40000, cpu_period=50000)
    s = spec(action="throttle", select={"name": name_of(cid)}, cpus=0.5, duration="1s")
    backend, recipe = inject(s)
    assert limits(cid) == (0, 25000, 50000) and cfs_quota(cid) == 25000
    backend.revert(recipe)
    assert limits(cid) == (0, 40000, 50000) and cfs_quota(cid) == 40000


def test_selection_by_label_picks_count_reproducibly_from_the_seed(
    containers: Containers,
) -> None:
    """count: 2 of 4 labelled containers: the same seed picks the same two; only they pause."""
    app = f"rdt-sel-{SESSION}"
    web = [containers.run(f"sel-web-{i}", labels={"app": app, "tier": "web"}) for i in range(4)]
    db = containers.run("sel-db", labels={"app": app, "tier": "db"})
    select = {"labels": {"app": app, "tier": "web"}}
    backend = DockerFaultBackend()
    picks = {
        seed: tuple(
            c["name"]
            for c in backend.prepare(
                spec(action="pause", select=select, count=2, seed=seed, duration="1s"), CTX
            )["containers"]
        )
        for seed in range(12)
    }
    assert all(len(p) == 2 for p in picks.values())
    assert len(set(picks.values())) > 1  # the seed matters
    s = spec(action="pause", select=select, count=2, seed=7, duration="1s")
    assert tuple(c["name"] for c in backend.prepare(s, CTX)["containers"]) == picks[7]
    _, recipe = inject(s)
    paused = {name_of(c) for c in web if inspect(c)["State"]["Paused"]}
    assert paused == set(picks[7])
    assert inspect(db)["State"]["Paused"] is False
    backend.revert(recipe)
    assert not any(inspect(c)["State"]["Paused"] for c in web)


def test_selection_by_compose_project_and_service(containers: Containers) -> None:
    """compose project + service select through the com.docker.compose.* labels alone."""
    project = f"rdt{SESSION}"

    def compose(service: str) -> dict[str, str]:
        return {"com.docker.compose.project": project, "com.docker.compose.service": service}

    gw = containers.run("cmp-gateway", labels=compose("gateway"))
    rep = containers.run("cmp-replica", labels=compose("replica"))
    other = containers.run(
        "cmp-other",
        labels={**compose("gateway"), "x": "1"}
        | {"com.docker.compose.project": f"{project}-other"},
    )
    s = spec(
        action="stop",
        select={"compose": {"project": project, "service": "gateway"}},
        duration="1s",
        stop_timeout="5s",
    )
    backend, recipe = inject(s)
    assert [c["id"] for c in recipe["containers"]] == [gw]
    assert inspect(gw)["State"]["Running"] is False
    assert inspect(rep)["State"]["Running"] and inspect(other)["State"]["Running"]
    backend.revert(recipe)
    assert wait_for(lambda: up(gw), 10)


def test_no_matching_container_is_refused_before_anything_is_touched(
    containers: Containers,
) -> None:
    """Too few running matches: preflight says so and prepare refuses (nothing injected)."""
    cid = containers.run("lonely", labels={"app": f"rdt-lonely-{SESSION}"})
    s = spec(
        action="pause", select={"labels": {"app": f"rdt-lonely-{SESSION}"}}, count=2, duration="1s"
    )
    problems = DockerFaultBackend().preflight(s, CTX)
    assert problems and "1 container(s) match, need 2 running" in problems[0]
    with pytest.raises(InjectionFailed):
        DockerFaultBackend().prepare(s, CTX)
    assert inspect(cid)["State"]["Paused"] is False


def test_docker_host_tcp_engine_socket(
    containers: Containers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With DOCKER_HOST=tcp://127.0.0.1:2375 the fault goes there; revert needs only the recipe."""
    tcp = "tcp://127.0.0.1:2375"
    cid = containers.run("tcp")
    monkeypatch.setenv("DOCKER_HOST", tcp)
    s = spec(action="pause", select={"name": name_of(cid)}, duration="1s")
    backend, recipe = inject(s)
    assert recipe["docker_host"] == tcp
    assert inspect(cid, host=tcp)["State"]["Paused"] is True
    monkeypatch.delenv("DOCKER_HOST")  # a rollback from another shell
    backend.revert(recipe)
    assert inspect(cid, host=tcp)["State"]["Paused"] is False


def test_crash_through_a_helper_container_on_a_tcp_engine(
    containers: Containers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """crash_via helper (for engines whose pids this host cannot see) still crashes for real."""
    tcp = "tcp://127.0.0.1:2375"
    cid = containers.run("helper", restart="on-failure")
    monkeypatch.setenv("DOCKER_HOST", tcp)
    s = spec(action="crash", select={"name": name_of(cid)}, crash_via="helper")
    _, recipe = inject(s)
    assert recipe["containers"][0]["crashed_via"] == "helper"
    assert wait_for(lambda: inspect(cid, host=tcp)["RestartCount"] >= 1, 15)
    assert wait_for(lambda: up(cid, host=tcp), 10)
    helpers = containers.client.api.containers(
        all=True, filters={"label": f"org.resildrill.helper={recipe['token']}"}
    )
    assert helpers == []  # the helper removed itself
