"""Fault kind ``docker``: crash, kill, stop, pause, restart and CPU-throttle containers.

Owns container faults through the Docker Engine API (the ``docker`` SDK, imported lazily:
``pip install 'resildrill[docker]'``), against the engine ``DOCKER_HOST`` names or the one
a fault gives in ``docker_host``. Containers are chosen by name, by labels, or by compose
project and service (the ``com.docker.compose.*`` labels, so no compose binary is needed);
``count: N`` picks N of the running matches, reproducibly from ``seed`` (the blast radius).

The restart-policy trap: a kill or stop *through the API* marks the container as stopped by
hand, so Docker never applies its restart policy. ``crash`` therefore SIGKILLs the
container's main process (``State.Pid``) from the host, as a real crash would, and its
restart policy brings it back; on an engine whose processes this host cannot see, a short
helper container in the host's pid namespace sends the signal instead.

The recipe journalled before acting holds each container's id and prior state (running,
paused, NanoCpus/CpuQuota/CpuPeriod, StartedAt, RestartCount, pid with its start time) and
the engine address, so ``resildrill rollback`` restores them from the journal alone. Every
engine call carries a deadline (``api_timeout``).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal as signal_module
import time
import uuid
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from resildrill.drill.model import Duration, FaultSpec, Frozen, TargetSpec
from resildrill.errors import InjectionFailed, ToolFailed, ToolProblem
from resildrill.faults.base import BackendHooks, FaultContext, Recipe
from resildrill.faults.docker_engine import (
    COMPOSE_PROJECT,
    COMPOSE_SERVICE,
    client_for,
    describe_limit,
    engine_address,
    engine_errors,
    inspect_container,
    limits_equal,
    parse_docker_time,
    pid_in_container,
    prior_state,
    restore_body,
    select_containers,
    throttle_body,
    update_resources,
)

__all__ = ["ComposeSelector", "ContainerSelector", "DockerFaultBackend", "DockerFaultSpec"]

HELPER_LABEL = "org.resildrill.helper"
#: How often ``advance`` asks the engine whether a crashed container is back.
POLL_INTERVAL_S = 0.2

Action = Literal["crash", "kill", "stop", "pause", "restart", "throttle"]


class ComposeSelector(Frozen):
    """Containers of a compose project (and service), found by their compose labels."""

    project: str
    service: str | None = None


class ContainerSelector(Frozen):
    """Which containers a fault may hit; every condition given must hold."""

    name: str | None = Field(default=None, description="exact container name")
    labels: dict[str, str] = Field(default_factory=dict, description="labels that must match")
    compose: ComposeSelector | None = None

    @model_validator(mode="after")
    def _something(self) -> ContainerSelector:
        if self.name is None and not self.labels and self.compose is None:
            raise ValueError("select needs at least one of 'name', 'labels' or 'compose'")
        return self

    def label_filters(self) -> dict[str, str]:
        """Every label condition, compose ones included."""
        labels = dict(self.labels)
        if self.compose is not None:
            labels[COMPOSE_PROJECT] = self.compose.project
            if self.compose.service is not None:
                labels[COMPOSE_SERVICE] = self.compose.service
        return labels

    def describe(self) -> str:
        """The selector in words, for messages."""
        parts = [f"name={self.name}"] if self.name else []
        parts += [f"{k}={v}" for k, v in sorted(self.label_filters().items())]
        return ", ".join(parts)


def _choose(client: Any, s: DockerFaultSpec) -> tuple[list[dict[str, Any]], int]:
    """The containers the spec's selector picks (seeded N of M), and how many matched."""
    return select_containers(
        client,
        name=s.select.name,
        labels=s.select.label_filters(),
        count=s.count,
        seed=s.seed,
    )


def _too_few(s: DockerFaultSpec, matched: int) -> str:
    want = s.count if s.count is not None else "at least 1"
    return f"select ({s.select.describe()}): {matched} container(s) match, need {want} running"


def outside_target(chosen: list[dict[str, Any]], target: TargetSpec) -> list[str]:
    """Chosen containers that are none of the target's services (by name or compose service).

    The blast radius: a fault touches only what the target lists. A target that lists no
    services at all (ad-hoc test targets) does not restrict the selection.
    """
    if not target.services:
        return []
    listed = set(target.services)
    return [
        str(c["_name"])
        for c in chosen
        if c["_name"] not in listed and (c.get("Labels") or {}).get(COMPOSE_SERVICE) not in listed
    ]


class DockerFaultSpec(FaultSpec):
    """Crash, kill, stop, pause, restart or CPU-throttle containers through the Docker API."""

    kind: Literal["docker"]
    action: Action = Field(
        description="crash: SIGKILL of the main process from the host (restart policy "
        "applies); kill/stop: through the API (restart policy off); pause; restart; throttle"
    )
    select: ContainerSelector
    count: int | None = Field(
        default=None, ge=1, description="how many of the running matches to hit; default all"
    )
    seed: int = Field(default=0, description="seeds the choice of 'count' containers")
    recovery: Literal["orchestrator", "drill"] | None = Field(
        default=None,
        description="orchestrator: the restart policy must bring it back (measured from "
        "injection); drill: the drill starts what it stopped after 'duration'. Default: "
        "orchestrator for crash and restart, drill otherwise",
    )
    signal: str = Field(default="SIGKILL", description="kill: the signal sent through the API")
    cpus: float | None = Field(default=None, gt=0, le=1024, description="throttle: CPUs allowed")
    cpu_quota: int | None = Field(
        default=None, ge=1000, description="throttle: CFS quota in µs per the container's period"
    )
    stop_timeout: Duration = Field(default=10.0, description="stop/restart: grace before SIGKILL")
    docker_host: str | None = Field(
        default=None, description="engine address; default: $DOCKER_HOST, else the local socket"
    )
    api_timeout: Duration = Field(default=10.0, description="deadline of each engine call")
    crash_via: Literal["auto", "host", "helper"] = Field(
        default="auto",
        description="crash: signal from this host (pid visible here), from a helper container "
        "in the engine host's pid namespace (remote engines), or whichever works",
    )

    @model_validator(mode="after")
    def _coherent(self) -> DockerFaultSpec:
        throttle = self.action == "throttle"
        if throttle and (self.cpus is None) == (self.cpu_quota is None):
            raise ValueError("throttle needs exactly one of 'cpus' or 'cpu_quota'")
        if not throttle and (self.cpus is not None or self.cpu_quota is not None):
            raise ValueError("'cpus' and 'cpu_quota' apply to action 'throttle' only")
        if self.action != "kill" and self.signal != "SIGKILL":
            raise ValueError("'signal' applies to action 'kill' only")
        if self.action == "kill":
            _signal_number(self.signal)
        recovery = self.effective_recovery
        if self.action in ("pause", "throttle") and recovery != "drill":
            raise ValueError(f"{self.action} is always ended by the drill (recovery: drill)")
        if self.action == "restart" and recovery != "orchestrator":
            raise ValueError("restart brings the container back itself (recovery: orchestrator)")
        if recovery == "drill" and self.duration is None:
            raise ValueError(
                f"{self.action} with recovery 'drill' needs a 'duration' (when to put it back)"
            )
        return self

    @property
    def effective_recovery(self) -> str:
        """The recovery mode, defaults applied."""
        if self.recovery is not None:
            return self.recovery
        return "orchestrator" if self.action in ("crash", "restart") else "drill"


def _signal_number(name: str) -> int:
    sig = name.upper()
    sig = sig if sig.startswith("SIG") else f"SIG{sig}"
    try:
        return int(signal_module.Signals[sig])
    except KeyError:
        raise ValueError(f"unknown signal {name!r}") from None


_LAST_POLL: dict[str, float] = {}


def _recipe_client(recipe: Recipe) -> Any:
    return client_for(
        recipe["docker_host"], timeout_s=recipe["api_timeout_s"], cert_path=recipe.get("cert_path")
    )


# --- the backend -----------------------------------------------------------------------------


class DockerFaultBackend(BackendHooks):
    """Container faults through the Docker Engine API, undone from the journal alone."""

    kind: ClassVar[str] = "docker"
    spec_model: ClassVar[type[FaultSpec]] = DockerFaultSpec

    # -- resolution ------------------------------------------------------------------------

    @staticmethod
    def _spec(spec: FaultSpec) -> DockerFaultSpec:
        assert isinstance(spec, DockerFaultSpec)
        return spec

    def preflight(self, spec: FaultSpec, ctx: FaultContext) -> list[str]:
        s = self._spec(spec)
        host = engine_address(s.docker_host)
        try:
            client = client_for(host, timeout_s=s.api_timeout)
            client.ping()
            chosen, matched = _choose(client, s)
        except ToolFailed as exc:
            return [ToolProblem(exc)]
        except engine_errors() as exc:
            return [ToolProblem(f"Docker engine at {host}: {exc}")]
        if not chosen:
            return [_too_few(s, matched)]
        problems = [
            f"container {name}: not a service of target {ctx.target.name!r} (blast radius)"
            for name in outside_target(chosen, ctx.target)
        ]
        if s.action == "crash" and s.crash_via == "host":
            for c in chosen:
                attrs = inspect_container(client, c["Id"]) or {}
                pid = int((attrs.get("State") or {}).get("Pid") or 0)
                if not pid or not pid_in_container(pid, attrs):
                    problems.append(
                        f"container {c['_name']}: its process is not visible on this host "
                        "(remote engine?); use crash_via: helper or auto"
                    )
        return problems

    def prepare(self, spec: FaultSpec, ctx: FaultContext) -> Recipe:
        s = self._spec(spec)
        host = engine_address(s.docker_host)
        client = client_for(host, timeout_s=s.api_timeout)
        try:
            chosen, matched = _choose(client, s)
            stray = outside_target(chosen, ctx.target)
            if stray:
                raise InjectionFailed(
                    f"select ({s.select.describe()}) matches containers the target does not "
                    f"list: {', '.join(stray)}; nothing injected (blast radius)"
                )
            priors = []
            for c in chosen:
                attrs = inspect_container(client, c["Id"])
                if attrs is not None:
                    priors.append(prior_state(attrs))
        except engine_errors() as exc:
            raise InjectionFailed(f"Docker engine at {host}: {exc}") from None
        if not priors:
            raise InjectionFailed(f"{_too_few(s, matched)}; nothing injected")
        throttles = None
        if s.action == "throttle":
            throttles = {
                p["id"]: throttle_body(p, cpus=s.cpus, cpu_quota=s.cpu_quota) for p in priors
            }
        return {
            "kind": self.kind,
            "action": s.action,
            "recovery": s.effective_recovery,
            "docker_host": host,
            # TLS material is referenced by its folder, never copied into the journal.
            "cert_path": os.environ.get("DOCKER_CERT_PATH") if not s.docker_host else None,
            "api_timeout_s": s.api_timeout,
            "stop_timeout_s": s.stop_timeout,
            "signal": s.signal,
            "crash_via": s.crash_via,
            "selector": s.select.describe(),
            "seed": s.seed,
            "count": s.count,
            "token": uuid.uuid4().hex[:12],
            "containers": priors,
            "throttle": throttles,
            "injected_wall": None,
            "back": {},
        }

    # -- inject ----------------------------------------------------------------------------

    def inject(self, spec: FaultSpec, recipe: Recipe, ctx: FaultContext) -> Recipe:
        s = self._spec(spec)
        client = _recipe_client(recipe)
        action = recipe["action"]
        recipe = {**recipe, "injected_wall": time.time()}
        done: list[dict[str, Any]] = []
        try:
            for c in recipe["containers"]:
                cid = c["id"]
                if action == "crash":
                    c = {**c, "crashed_via": self._crash(client, c, recipe)}
                elif action == "kill":
                    client.api.kill(cid, signal=_signal_number(s.signal))
                elif action == "stop":
                    client.api.stop(cid, timeout=math.ceil(s.stop_timeout))
                elif action == "pause":
                    client.api.pause(cid)
                elif action == "restart":
                    client.api.restart(cid, timeout=math.ceil(s.stop_timeout))
                elif action == "throttle":
                    update_resources(client, cid, recipe["throttle"][cid])
                done.append(c)
        except engine_errors() as exc:
            raise InjectionFailed(f"docker {action}: {exc}") from None
        return {**recipe, "containers": done}

    def _crash(self, client: Any, prior: dict[str, Any], recipe: Recipe) -> str:
        """SIGKILL the container's main process as a crash would; returns how it was sent."""
        attrs = inspect_container(client, prior["id"])
        if attrs is None or not (attrs.get("State") or {}).get("Running"):
            raise InjectionFailed(f"container {prior['name']} is not running")
        pid = int(attrs["State"]["Pid"])
        # The pid is re-read and checked against the container's cgroup just before the
        # signal, so a pid the kernel has given to another program is never hit.
        local = pid_in_container(pid, attrs)
        if local and recipe["crash_via"] in ("auto", "host"):
            os.kill(pid, signal_module.SIGKILL)
            return "host"
        if recipe["crash_via"] == "host":
            raise InjectionFailed(f"container {prior['name']}: pid {pid} is not visible here")
        self._crash_with_helper(client, attrs, pid, recipe)
        return "helper"

    @staticmethod
    def _crash_with_helper(client: Any, attrs: dict[str, Any], pid: int, recipe: Recipe) -> None:
        """Send SIGKILL from a throwaway container in the engine host's pid namespace.

        It runs the target's own image and mounts (so it has the same ``sh``), removed
        by id afterwards; an engine that refuses ``--pid=host`` makes the crash fail.
        """
        api = client.api
        host_config = api.create_host_config(
            pid_mode="host",
            network_mode="none",
            binds=[":".join([*b.split(":")[:2], "ro"]) for b in attrs["HostConfig"]["Binds"] or []],
        )
        helper = api.create_container(
            attrs["Image"],
            entrypoint=["/bin/sh", "-c", f"kill -KILL {pid}"],
            command=[],
            user="0",
            labels={HELPER_LABEL: recipe["token"]},
            host_config=host_config,
        )
        hid = helper["Id"]
        try:
            api.start(hid)
            result = api.wait(hid, timeout=recipe["api_timeout_s"])
            if int(result.get("StatusCode", 1)) != 0:
                raise InjectionFailed(
                    f"helper container could not signal pid {pid}: "
                    f"{api.logs(hid, tail=3).decode(errors='replace').strip()}"
                )
        finally:
            with contextlib.suppress(*engine_errors()):
                api.remove_container(hid, force=True)

    # -- watch (AdvancingFault) -------------------------------------------------------------

    def advance(
        self, spec: FaultSpec, recipe: Recipe, elapsed_s: float, ctx: FaultContext
    ) -> tuple[Recipe, list[dict[str, Any]]]:
        """Watch for the restart policy bringing lost containers back; say when it did."""
        if recipe["recovery"] != "orchestrator" or recipe["action"] == "pause":
            return recipe, []
        back: dict[str, Any] = recipe.get("back") or {}
        if len(back) == len(recipe["containers"]):
            return recipe, []
        now = time.monotonic()
        if now - _LAST_POLL.get(recipe["token"], 0.0) < POLL_INTERVAL_S:
            return recipe, []
        _LAST_POLL[recipe["token"]] = now
        try:
            client = _recipe_client(recipe)
        except ToolFailed:
            return recipe, []  # the engine is unreachable right now: ask again next poll
        actions = []
        back = dict(back)
        for c in recipe["containers"]:
            if c["id"] in back:
                continue
            try:
                attrs = inspect_container(client, c["id"])
            except engine_errors():
                continue  # an engine hiccup is retried at the next poll
            if attrs is None:
                continue
            state = attrs["State"]
            if not state.get("Running") or state.get("Restarting"):
                continue
            if state.get("StartedAt") == c["started_at"]:
                continue
            started = parse_docker_time(state.get("StartedAt", ""))
            injected = recipe.get("injected_wall")
            entry = {
                "container": c["name"],
                "seen_after_s": round(elapsed_s, 3),
                # From the engine's own StartedAt: exact on one host, skewed by a remote clock.
                "started_after_s": (round(started - injected, 3) if started and injected else None),
                "restart_count": int(attrs.get("RestartCount") or 0),
            }
            back[c["id"]] = entry
            actions.append({"action": "container_restarted", **entry})
        if not actions:
            return recipe, []
        return {**recipe, "back": back}, actions

    # -- undo ------------------------------------------------------------------------------

    def is_injected(self, recipe: Recipe) -> bool:
        errors: tuple[type[BaseException], ...] = (ToolFailed, *engine_errors())
        try:
            return self._is_injected(recipe)
        except errors:
            return True  # what cannot be checked is not known to be gone

    def _is_injected(self, recipe: Recipe) -> bool:
        client = _recipe_client(recipe)
        action = recipe["action"]
        for c in recipe["containers"]:
            attrs = inspect_container(client, c["id"])
            if attrs is None:
                continue  # removed by someone else: nothing of ours left in it
            state = attrs.get("State") or {}
            if action == "pause":
                if state.get("Paused") and not c["paused"]:
                    return True
            elif action == "throttle":
                if not limits_equal(attrs.get("HostConfig") or {}, c):
                    return True
            elif not state.get("Running") or state.get("Restarting"):
                return True
        return False

    def revert(self, recipe: Recipe) -> str:
        client = _recipe_client(recipe)
        action = recipe["action"]
        done: list[str] = []
        for c in recipe["containers"]:
            attrs = inspect_container(client, c["id"])
            if attrs is None:
                done.append(f"{c['name']}: gone")
                continue
            if action == "pause":
                if attrs["State"].get("Paused") and not c["paused"]:
                    client.api.unpause(c["id"])
                    done.append(f"{c['name']}: unpaused")
            elif action == "throttle":
                if not limits_equal(attrs.get("HostConfig") or {}, c):
                    update_resources(client, c["id"], restore_body(c))
                    limit = describe_limit(c["nano_cpus"], c["cpu_quota"], c["cpu_period"])
                    done.append(f"{c['name']}: CPU limit back to {limit}")
            else:
                done.append(self._bring_back(client, c, attrs, recipe))
        return "; ".join(done) if done else "nothing to do"

    def _bring_back(
        self, client: Any, c: dict[str, Any], attrs: dict[str, Any], recipe: Recipe
    ) -> str:
        """Start a lost container unless it is back (or its restart policy is restarting it)."""
        deadline = time.monotonic() + float(recipe["api_timeout_s"])
        while attrs["State"].get("Restarting") and time.monotonic() < deadline:
            time.sleep(0.1)  # the restart policy is acting: give it its chance first
            attrs = inspect_container(client, c["id"]) or attrs
        state = attrs["State"]
        if state.get("Running") and not state.get("Restarting"):
            # Docker publishes the new Pid a moment before the new StartedAt: either will do.
            again = state.get("StartedAt") != c["started_at"] or state.get("Pid") != c["pid"]
            if recipe["recovery"] == "orchestrator" and again:
                return f"{c['name']}: restarted by its restart policy ({c['restart_policy']})"
            return f"{c['name']}: running"
        client.api.start(c["id"])
        if recipe["recovery"] == "orchestrator":
            return (
                f"{c['name']}: not restarted by its restart policy ({c['restart_policy']}); "
                "started by the drill"
            )
        return f"{c['name']}: started"

    def wait_reverted(self, recipe: Recipe, timeout_s: float = 10.0) -> bool:
        """Poll until nothing of the fault is left (a started container is running)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_injected(recipe):
                return True
            time.sleep(0.1)
        return not self.is_injected(recipe)

    def self_heals(self, spec: FaultSpec, ctx: FaultContext) -> bool:
        return self._spec(spec).effective_recovery == "orchestrator"

    def undo_hint(self, recipe: Recipe) -> str:
        ids = " ".join(c["id"][:12] for c in recipe["containers"])
        env = f"DOCKER_HOST={recipe['docker_host']} "
        action = recipe["action"]
        if action == "pause":
            return f"{env}docker unpause {ids}"
        if action == "throttle":
            cmds = []
            for c in recipe["containers"]:
                body = restore_body(c)
                flag = (
                    f"--cpus {body['NanoCpus'] / 1e9:g}"
                    if "NanoCpus" in body
                    else f"--cpu-quota {body['CpuQuota']}"
                )
                cmds.append(f"{env}docker update {flag} {c['id'][:12]}")
            return " && ".join(cmds)
        return f"{env}docker start {ids}"
