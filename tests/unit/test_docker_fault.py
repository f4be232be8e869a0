"""Unit tests of the docker fault kind that need no engine: specs, CPU limit arithmetic, choice.

The behaviour against a real engine is in tests/integration/docker/.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from pydantic import ValidationError

from resildrill.errors import ToolFailed
from resildrill.faults import docker as d
from resildrill.faults import docker_engine as e


def spec(**fields: Any) -> d.DockerFaultSpec:
    """A docker fault spec as a drill file would give it."""
    return d.DockerFaultSpec.model_validate(
        {"id": "f", "kind": "docker", "at": "0s", "select": {"name": "web"}, **fields}
    )


def prior(nano: int = 0, quota: int = 0, period: int = 0) -> dict[str, Any]:
    """A container's recorded CPU limits."""
    return {"nano_cpus": nano, "cpu_quota": quota, "cpu_period": period}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action": "throttle", "duration": "1s"}, "exactly one of 'cpus' or 'cpu_quota'"),
        ({"action": "throttle", "cpus": 0.5, "cpu_quota": 5000, "duration": "1s"}, "exactly one"),
        ({"action": "pause", "cpus": 0.5, "duration": "1s"}, "throttle' only"),
        ({"action": "pause"}, "needs a 'duration'"),
        ({"action": "pause", "recovery": "orchestrator", "duration": "1s"}, "ended by the drill"),
        ({"action": "restart", "recovery": "drill", "duration": "1s"}, "brings the container"),
        ({"action": "stop", "signal": "SIGTERM", "duration": "1s"}, "'kill' only"),
        ({"action": "kill", "signal": "SIGNOPE", "duration": "1s"}, "unknown signal"),
        ({"action": "crash", "select": {}}, "at least one of 'name', 'labels' or 'compose'"),
    ],
)
def test_incoherent_specs_are_refused(fields: dict[str, Any], message: str) -> None:
    """Each inconsistent combination is a validation error naming what is wrong."""
    with pytest.raises(ValidationError, match=message):
        spec(**fields)


def test_recovery_defaults_follow_the_action() -> None:
    """crash and restart heal through the engine; the others are ended by the drill."""
    assert spec(action="crash").effective_recovery == "orchestrator"
    assert spec(action="restart").effective_recovery == "orchestrator"
    assert spec(action="kill", duration="1s").effective_recovery == "drill"
    assert spec(action="crash", recovery="drill", duration="2s").effective_recovery == "drill"


def test_throttle_keeps_the_units_of_the_prior_limit() -> None:
    """NanoCpus stays NanoCpus; a quota stays a quota in its own period; none becomes a quota."""
    s = {"cpus": 0.2, "cpu_quota": None}
    assert e.throttle_body(prior(nano=1_500_000_000), **s) == {"NanoCpus": 200_000_000}
    assert e.throttle_body(prior(quota=40000, period=50000), **s) == {"CpuQuota": 10000}
    assert e.throttle_body(prior(), **s) == {"CpuQuota": 20000}
    q = {"cpus": None, "cpu_quota": 30000}
    assert e.throttle_body(prior(nano=2_000_000_000), **q) == {"NanoCpus": 300_000_000}


def test_restore_writes_back_the_prior_limit_and_no_limit_as_minus_one() -> None:
    """The prior limit is written back as it was; 'never set' (0) is written as -1."""
    assert e.restore_body(prior(nano=1_500_000_000)) == {"NanoCpus": 1_500_000_000}
    assert e.restore_body(prior(quota=40000, period=50000)) == {"CpuQuota": 40000}
    assert e.restore_body(prior()) == {"CpuQuota": -1}
    assert e.restore_body(prior(quota=-1)) == {"CpuQuota": -1}
    assert e.limits_equal({"NanoCpus": 0, "CpuQuota": -1}, prior())
    assert not e.limits_equal({"NanoCpus": 0, "CpuQuota": 20000}, prior())


def choose(client: Any, s: d.DockerFaultSpec) -> tuple[list[dict[str, Any]], int]:
    """select_containers with the spec's selection, as the backend calls it."""
    return e.select_containers(
        client, name=s.select.name, labels=s.select.label_filters(), count=s.count, seed=s.seed
    )


class FakeAPI:
    """Just enough of the SDK's low-level client for selection."""

    def __init__(self, summaries: list[dict[str, Any]]) -> None:
        self.summaries = summaries

    def containers(self, **kw: Any) -> list[dict[str, Any]]:
        wanted = dict(f.split("=", 1) for f in kw["filters"].get("label", []))
        return [
            dict(c)
            for c in self.summaries
            if kw["all"] or c["State"] == "running"
            if all(c["Labels"].get(k) == v for k, v in wanted.items())
        ]


class FakeClient:
    """A client with only the low-level API."""

    def __init__(self, summaries: list[dict[str, Any]]) -> None:
        self.api = FakeAPI(summaries)


def box(name: str, state: str = "running", **labels: str) -> dict[str, Any]:
    """A container summary as ``GET /containers/json`` returns it."""
    return {"Id": name * 8, "Names": [f"/{name}"], "State": state, "Labels": labels}


def test_count_is_chosen_reproducibly_from_the_seed_among_running_matches() -> None:
    """The same seed picks the same containers, whatever order the engine lists them in."""
    boxes = [box(f"web{i}", app="ward") for i in range(6)] + [box("off", "exited", app="ward")]
    s = spec(action="crash", select={"labels": {"app": "ward"}}, count=2, seed=3)
    first, matched = choose(FakeClient(boxes), s)
    again, _ = choose(FakeClient(list(reversed(boxes))), s)
    assert matched == 7 and len(first) == 2
    assert [c["_name"] for c in first] == [c["_name"] for c in again]
    assert "off" not in {c["_name"] for c in first}
    picks = {
        tuple(c["_name"] for c in choose(FakeClient(boxes), s.model_copy(update={"seed": n}))[0])
        for n in range(20)
    }
    assert len(picks) > 1


def test_too_few_running_matches_select_nothing() -> None:
    """count larger than the running matches selects nothing (the fault is refused)."""
    boxes = [box("a", app="x"), box("b", "exited", app="x")]
    s = spec(action="pause", select={"labels": {"app": "x"}}, count=2, duration="1s")
    assert choose(FakeClient(boxes), s) == ([], 2)


def test_compose_and_name_selection() -> None:
    """compose project+service read the compose labels; a name matches exactly."""
    boxes = [
        box("p-gw", **{e.COMPOSE_PROJECT: "p", e.COMPOSE_SERVICE: "gateway"}),
        box("p-db", **{e.COMPOSE_PROJECT: "p", e.COMPOSE_SERVICE: "db"}),
        box("p-gw-2"),
    ]
    s = spec(action="crash", select={"compose": {"project": "p", "service": "gateway"}})
    assert [c["_name"] for c in choose(FakeClient(boxes), s)[0]] == ["p-gw"]
    by_name = spec(action="crash", select={"name": "p-gw"})
    assert [c["_name"] for c in choose(FakeClient(boxes), by_name)[0]] == ["p-gw"]


def test_engine_timestamps_parse_with_nanoseconds() -> None:
    """StartedAt with nanoseconds parses; Docker's zero time is None."""
    assert e.parse_docker_time("2026-11-26T05:24:50.795152123Z") == pytest.approx(
        1795670690.795152, abs=1e-6
    )
    assert e.parse_docker_time("0001-01-01T00:00:00Z") is None


def test_undo_hint_names_the_engine_and_the_command() -> None:
    """The hint a human can paste: DOCKER_HOST plus the docker command that undoes it."""
    recipe = {
        "docker_host": "tcp://127.0.0.1:2375",
        "action": "throttle",
        "containers": [{"id": "a" * 64, **prior(nano=1_500_000_000)}],
    }
    hint = d.DockerFaultBackend().undo_hint(recipe)
    assert hint == "DOCKER_HOST=tcp://127.0.0.1:2375 docker update --cpus 1.5 aaaaaaaaaaaa"
    assert "docker unpause" in d.DockerFaultBackend().undo_hint({**recipe, "action": "pause"})


def test_missing_sdk_fails_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the docker SDK the backend says how to install it."""
    monkeypatch.setitem(sys.modules, "docker", None)
    with pytest.raises(ToolFailed, match=r"pip install 'resildrill\[docker\]'"):
        e.import_docker()


def test_blast_radius_keeps_to_target_services() -> None:
    """Only containers named as (or labelled with) a target service may be touched."""
    from resildrill.drill.model import TargetSpec
    from resildrill.faults.docker import outside_target

    target = TargetSpec.model_validate(
        {
            "apiVersion": "resildrill/v1",
            "kind": "Target",
            "name": "t",
            "environment": "test",
            "services": {"gateway": {}},
            "probes": [{"name": "p", "tcp": {"host": "127.0.0.1", "port": 1}}],
        }
    )
    chosen = [
        {"_name": "gateway", "Labels": {}},
        {"_name": "ward-ehr-docker-gateway-1", "Labels": {"com.docker.compose.service": "gateway"}},
        {"_name": "someone-elses-db", "Labels": {"com.docker.compose.service": "db"}},
    ]
    assert outside_target(chosen, target) == ["someone-elses-db"]
    open_target = target.model_copy(update={"services": {}})
    assert outside_target(chosen, open_target) == []
