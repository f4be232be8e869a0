"""``HeatFaultBackend``: plays the heat model's schedule on the target's live processes.

Owns turning planned server states into signals, tick by tick, from the recipe alone (the
runner makes a fresh backend instance for every call, and a crashed run is undone from the
journalled recipe):

- **throttled / warning / caution**: a SIGSTOP/SIGCONT duty cycle in real time (``throttle.
  period``, ``stop_fraction``), which raises latency the way a TCC-throttled CPU does;
- **shutdown**: SIGTERM (the OS's graceful shutdown); **power-off**: SIGKILL;
- **restart**: the service's ``restart`` command, or its supervisor (see below);
- **lost** (hardware loss): stays off until the fault ends; the drill's ``manual`` step
  stands for the repair.

Holding a shut-down server down. A supervisor (the ward EHR's, systemd, a restart policy)
restarts a dead child within its restart delay, which would turn "shut down until it cools"
into "back in a second". Freezing the child instead of stopping it does not work either: a
liveness check kills a frozen child (the ward EHR's supervisor does), and a frozen process
keeps its locks and sockets, which a powered-off server does not. So heat **freezes the
supervisor** (SIGSTOP) while any server it owns must stay off: the dead child stays a zombie,
nobody restarts it. To restart a server, heat resumes the supervisor, which restarts it after
its own (real, unscaled) restart delay; a server that must stay off and that the supervisor
brings back meanwhile is killed at birth (recorded as ``held``), and the supervisor is frozen
again once every due restart is up. Servers running through the freeze keep running (a
frozen supervisor only stops supervising). Rollback resumes the supervisor first.

Every change is an entry of the fault's ``actions[]`` carrying the model time, the planned
real time and the real time it happened (``elapsed_s``); a restart's ``up`` action carries
the measured ``restart_took_s``, never scaled. ``cooling_restored`` carries ``ends_fault``
so recovery is counted from it.
"""

from __future__ import annotations

import copy
import os
import signal
from pathlib import Path
from typing import Any, ClassVar

from resildrill.drill.model import FaultSpec, ProcessLocator, ServiceSpec
from resildrill.errors import InjectionFailed
from resildrill.faults.base import Backend, BackendHooks, FaultContext, Recipe
from resildrill.faults.heat import remote as remote_heat
from resildrill.faults.heat.model import (
    OFF_STATES,
    THROTTLED_STATES,
    HeatEvent,
    format_model_time,
    schedule_table,
)
from resildrill.faults.heat.schedule import heat_warnings, schedule_for
from resildrill.faults.heat.spec import HeatFaultSpec
from resildrill.faults.process import (
    find_processes,
    is_same_process,
    proc_cmdline,
    proc_ppid,
    proc_start_time,
    proc_state,
    run_restart_command,
)
from resildrill.remote.hooks import RemoteHooks


def _signal(pid: int, start_time: int, sig: int) -> bool:
    """Send ``sig`` only if ``pid`` is still the recorded process; True if sent."""
    if not is_same_process(pid, start_time):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def _proc_entry(pid: int) -> dict[str, Any] | None:
    start = proc_start_time(pid)
    return None if start is None else {"pid": pid, "start_time": start}


# --- delegates: network gear and containers, composed through their own backends -----------


def _delegate_backend(kind: str) -> Backend:
    """The network or docker backend, imported only when such a server is in the room."""
    if kind == "network":
        from resildrill.faults.network import NetworkFaultBackend

        return NetworkFaultBackend()
    from resildrill.faults.docker import DockerFaultBackend

    return DockerFaultBackend()


def _gear_problems(name: str, proxy: str, ctx: FaultContext) -> list[str]:
    tp = ctx.target.toxiproxy
    if tp is None:
        return [f"network gear {name!r}: the target declares no toxiproxy section"]
    if proxy not in tp.proxies:
        known = ", ".join(sorted(tp.proxies)) or "none"
        return [f"network gear {name!r}: proxy {proxy!r} is not declared (declared: {known})"]
    return []


def _gear_fault(heat: HeatFaultSpec, name: str, gear: dict[str, Any], state: str) -> Any:
    """The network fault a gear state stands for, or None (normal: nothing)."""
    from resildrill.faults.network import NetworkFaultSpec

    what = {"throttled": "latency", "warning": "latency", "caution": "reset"}.get(state, "down")
    base = {
        # one name per toxic kind, so warning keeps the latency toxic throttled added
        "id": f"{heat.id}-{name}-{what}",
        "kind": "network",
        "at": "0s",
        # a lifetime for the embedded proxy's own clean-up; heat removes it sooner
        "duration": f"{heat.duration:g}s",
        "proxy": gear["proxy"],
    }
    if state in ("throttled", "warning"):
        toxic = {
            "type": "latency",
            "attributes": {"latency": gear["latency"], "jitter": gear["jitter"]},
        }
        return NetworkFaultSpec.model_validate({**base, "toxic": toxic})
    if state == "caution":
        toxic = {
            "type": "reset_peer",
            "attributes": {"timeout": 0},
            "toxicity": gear["reset_toxicity"],
        }
        return NetworkFaultSpec.model_validate({**base, "toxic": toxic})
    if state in OFF_STATES:
        return NetworkFaultSpec.model_validate({**base, "down": True})
    return None


def _container_fault(heat: HeatFaultSpec, name: str, box: dict[str, Any], state: str) -> Any:
    """The docker fault a container's state stands for, or None (normal: nothing).

    Throttled: a CPU quota (``throttle.cpus``); shutdown: ``stop`` through the API;
    power-off: ``kill``. A stop or kill through the API turns Docker's restart policy off,
    so the container stays down until heat starts it again (no supervisor to hold).
    """
    from resildrill.faults.docker import DockerFaultSpec

    what = {
        "throttled": "throttle",
        "warning": "throttle",
        "caution": "throttle",
        "shutdown": "stop",
        "power-off": "kill",
    }.get(state)
    if what is None:
        return None
    doc: dict[str, Any] = {
        "id": f"{heat.id}-{name}-{what}",
        "kind": "docker",
        "at": "0s",
        "duration": f"{heat.duration:g}s",
        "action": what,
        "select": box["select"],
        "recovery": "drill",
    }
    if box.get("docker_host"):
        doc["docker_host"] = box["docker_host"]
    if what == "throttle":
        doc["cpus"] = heat.throttle.cpus
    if what == "stop":
        grace = box["stop_timeout"]  # a duration string once dumped ("5s")
        doc["stop_timeout"] = grace if isinstance(grace, str) else f"{grace:g}s"
    return DockerFaultSpec.model_validate(doc)


def _delegate_apply(
    heat: HeatFaultSpec, name: str, srv: dict[str, Any], state: str, ctx: FaultContext
) -> str:
    """Swap the server's current delegated fault for the one its new state stands for."""
    if state == "lost":
        return "unchanged: stays off (hardware lost)"
    kind = srv["mode"]
    if kind == "network":
        wanted = _gear_fault(heat, name, srv["gear"], state)
    else:
        wanted = _container_fault(heat, name, srv["container"], state)
    backend = _delegate_backend(kind)
    current = srv.get("sub")
    if current is not None and wanted is not None and current["id"] == wanted.id:
        return "unchanged"
    notes = []
    if current is not None:
        notes.append(backend.revert(current["recipe"]))
        srv["sub"] = None
    if wanted is not None:
        recipe = backend.prepare(wanted, ctx)
        # journalled as soon as advance returns (an embedded proxy also expires its toxics)
        srv["sub"] = {"id": wanted.id, "recipe": recipe}
        recipe = backend.inject(wanted, recipe, ctx)
        srv["sub"] = {"id": wanted.id, "recipe": recipe}
        if kind == "network":
            what = "proxy disabled" if wanted.down else f"{wanted.toxic.type} toxic"
            notes.append(f"{what} on {srv['gear']['proxy']}")
        else:
            extra = f" to {wanted.cpus:g} CPU" if wanted.action == "throttle" else ""
            notes.append(f"docker {wanted.action}{extra} of {recipe['selector']}")
    return "; ".join(notes) or "nothing to change"


class HeatFaultBackend(RemoteHooks, BackendHooks):
    """Fault kind ``heat``: FaultBackend + AdvancingFault over local processes."""

    kind: ClassVar[str] = "heat"
    spec_model: ClassVar[type[FaultSpec]] = HeatFaultSpec

    # -- resolution ----------------------------------------------------------------------

    @staticmethod
    def _spec(spec: FaultSpec) -> HeatFaultSpec:
        assert isinstance(spec, HeatFaultSpec)
        return spec

    def _supervisor_pid(
        self, spec: HeatFaultSpec, name: str, pids: list[int], ctx: FaultContext
    ) -> int | None:
        """The process that restarts ``name``: the named supervisor service, or its parent."""
        if spec.supervisor is not None:
            service = ctx.target.services.get(spec.supervisor)
            if service is None or service.process is None:
                return None
            found = find_processes(service.process, ctx.run_dir)
            return found[0] if len(found) == 1 else None
        parents = {proc_ppid(p) for p in pids}
        if len(parents) != 1:
            return None
        parent = parents.pop()
        if parent is None or parent <= 1 or parent in ctx.protected_pids:
            return None
        if parent == os.getpid() or proc_state(parent) in (None, "Z", "X"):
            return None
        return parent

    def _problems(self, spec: HeatFaultSpec, ctx: FaultContext) -> list[str]:
        problems: list[str] = []
        schedule = schedule_for(spec)
        for name, server in spec.servers.items():
            if server.network is not None:
                found = _gear_problems(name, server.network.proxy, ctx)
                if not found:
                    probe = _gear_fault(spec, name, server.network.model_dump(), "caution")
                    found = [f"network gear {name!r}: {p}" for p in
                             _delegate_backend("network").preflight(probe, ctx)]  # fmt: skip
                problems += found
                continue
            if server.container is not None:
                probe = _container_fault(spec, name, server.container.model_dump(), "throttled")
                problems += [f"container {name!r}: {p}" for p in
                             _delegate_backend("docker").preflight(probe, ctx)]  # fmt: skip
                continue
            service: ServiceSpec | None = ctx.target.services.get(name)
            if service is None:
                known = ", ".join(sorted(ctx.target.services)) or "none"
                problems.append(f"server {name!r} is not a service of the target (known: {known})")
                continue
            if service.process is None:
                problems.append(f"server {name!r} has no 'process' locator")
                continue
            if service.host is not None:  # a host of the estate in the hot room
                goes_off = any(e.state in OFF_STATES for e in schedule.server_events(name))
                problems += remote_heat.problems(name, service, goes_off, ctx)
                continue
            pids = find_processes(service.process, ctx.run_dir)
            if len(pids) != service.process.count:
                problems.append(
                    f"server {name!r}: expected {service.process.count} process(es), "
                    f"found {len(pids)}"
                )
                continue
            if any(p in ctx.protected_pids for p in pids):
                problems.append(f"server {name!r}: a pid belongs to resildrill itself")
            goes_off = any(e.state in OFF_STATES for e in schedule.server_events(name))
            if not goes_off:
                continue
            if service.recovery == "none":
                problems.append(
                    f"server {name!r} shuts down in the plan but has recovery 'none': "
                    "it could never be brought back"
                )
            elif (
                service.recovery == "supervisor"
                and self._supervisor_pid(spec, name, pids, ctx) is None
            ):
                problems.append(
                    f"server {name!r} shuts down in the plan and is restarted by a "
                    "supervisor heat cannot find: name its service in 'supervisor:'"
                )
        return problems

    def preflight(self, spec: FaultSpec, ctx: FaultContext) -> list[str]:
        return self._problems(self._spec(spec), ctx)

    # Network gear needs the target's Toxiproxy for the whole drill: whatever the network
    # backend does for a run (start the embedded server), heat asks it to do too.
    def remote_hosts(self, spec: FaultSpec, ctx: FaultContext) -> list[str]:
        """Hosts of the estate in the hot room (servers that are services with ``host:``)."""
        heat = self._spec(spec)
        hosts = [ctx.target.services[n].host for n in heat.servers if n in ctx.target.services]
        return sorted({h for h in hosts if h})

    def setup_run(self, ctx: FaultContext, run_dir: Path) -> list[dict[str, Any]]:
        """The guards on remote servers' hosts; the network backend's run set-up, when the
        target has a Toxiproxy section."""
        records = RemoteHooks.setup_run(self, ctx, run_dir)
        if ctx.target.toxiproxy is None:
            return records
        return records + _delegate_backend("network").setup_run(ctx, run_dir)

    def teardown_run(self, ctx: FaultContext, run_dir: Path) -> list[str]:
        """The guards' hand-off; the network backend's run tear-down (it checks every
        proxied hop)."""
        notes = RemoteHooks.teardown_run(self, ctx, run_dir)
        if ctx.target.toxiproxy is None:
            return notes
        return notes + _delegate_backend("network").teardown_run(ctx, run_dir)

    def warnings(self, spec: FaultSpec, ctx: FaultContext) -> list[str]:
        """Non-fatal notes for ``plan``/``validate``: scaled intervals shorter than restarts."""
        heat = self._spec(spec)
        return heat_warnings(heat, ctx.target)

    def plan_table(self, spec: FaultSpec, ctx: FaultContext, offset_s: float) -> list[str]:
        """``resildrill plan``'s heat schedule: model time, real time (from the drill's start,
        ``offset_s`` being the injection), temperatures and states; then any warnings."""
        heat = self._spec(spec)
        schedule = schedule_for(heat)
        lines = [
            f"heat {heat.id}: time_scale {heat.time_scale:g} (1 s real = "
            f"{format_model_time(heat.time_scale)} model), tick {heat.tick:g}s model, "
            f"seed {heat.seed}; recovery counted from cooling restored",
        ]
        for name, p in schedule.profiles.items():
            lines.append(
                f"  {name:<14} {p.server_class:<13} offset {p.offset:+.1f} °C  throttle "
                f"{p.throttle:g} warning {p.warning:g} caution {p.caution:g} critical "
                f"{p.critical:g}  restart below {p.restart_below:g} after "
                f"{format_model_time(p.retry_s)} off"
            )
        header, *rows = schedule_table(schedule)
        lines.append(f"  {'at':>8}  {header}")
        for event, row in zip(schedule.events, rows, strict=True):
            lines.append(f"  {offset_s + event.real_s:7.2f}s  {row}")
        lines += [f"  warning: {w}" for w in self.warnings(spec, ctx)]
        return lines

    def prepare(self, spec: FaultSpec, ctx: FaultContext) -> Recipe:
        heat = self._spec(spec)
        problems = self._problems(heat, ctx)
        if problems:
            raise InjectionFailed("; ".join(problems) + "; nothing injected")
        base_dir = ctx.run_dir
        servers: dict[str, Any] = {}
        supervisors: dict[str, Any] = {}
        for name in sorted(heat.servers):
            gear = heat.servers[name].network
            box = heat.servers[name].container
            if gear is not None or box is not None:
                servers[name] = {
                    "state": "normal",
                    "mode": "network" if gear is not None else "docker",
                    "gear": None if gear is None else gear.model_dump(mode="json"),
                    "container": None if box is None else box.model_dump(),
                    "sub": None,
                    "locator": None,
                    "expected": 0,
                    "pids": [],
                    "touched": [],
                    "shut": [],
                    "supervisor": None,
                    "restart": None,
                    "restart_requested_s": None,
                    "awaiting_up": False,
                }
                continue
            service = ctx.target.services[name]
            assert service.process is not None
            if service.host is not None:
                servers[name] = remote_heat.prepare(name, service, ctx)
                continue
            pids = find_processes(service.process, base_dir)
            entries = [e for e in (_proc_entry(p) for p in pids) if e is not None]
            if len(entries) != len(pids):
                raise InjectionFailed(f"server {name!r}: a process vanished; nothing injected")
            record: dict[str, Any] = {
                "state": "normal",
                "locator": service.process.model_dump(mode="json"),
                "expected": service.process.count,
                "pids": entries,
                "touched": [],
                "shut": [],
                "mode": "none",
                "supervisor": None,
                "restart": None,
                "restart_requested_s": None,
                "awaiting_up": False,
            }
            if service.recovery == "restart" and service.restart is not None:
                cwd = Path(service.restart.cwd) if service.restart.cwd else ctx.target_dir
                record["mode"] = "command"
                record["restart"] = {
                    "command": list(service.restart.command),
                    "cwd": str(cwd if cwd.is_absolute() else ctx.target_dir / cwd),
                }
            elif service.recovery == "supervisor":
                record["mode"] = "supervisor"
                sup = self._supervisor_pid(heat, name, pids, ctx)
                if sup is not None:
                    key = str(sup)
                    entry = _proc_entry(sup)
                    if entry is not None:
                        supervisors.setdefault(
                            key, {**entry, "cmdline": proc_cmdline(sup), "frozen": False}
                        )
                        record["supervisor"] = key
            servers[name] = record
        return {
            "kind": self.kind,
            "base_dir": str(base_dir),
            "time_scale": heat.time_scale,
            "applied": 0,
            "throttle": {
                "period_s": heat.throttle.period,
                "stop_fraction": heat.throttle.stop_fraction,
            },
            "servers": servers,
            "supervisors": supervisors,
        }

    def inject(self, spec: FaultSpec, recipe: Recipe, ctx: FaultContext) -> Recipe:
        # Nothing happens at the instant of injection: cooling is lost at model time
        # ``cooling_lost_at`` and every change is applied by advance() on the runner's tick.
        for name, srv in recipe["servers"].items():
            if srv["mode"] == "remote":
                continue  # checked on the host by the guard, before every signal
            for p in srv["pids"]:
                if not is_same_process(p["pid"], p["start_time"]):
                    raise InjectionFailed(f"server {name!r}: pid {p['pid']} is no longer its own")
        return recipe

    # -- acting over time ------------------------------------------------------------------

    def advance(
        self, spec: FaultSpec, recipe: Recipe, elapsed_s: float, ctx: FaultContext
    ) -> tuple[Recipe, list[dict[str, Any]]]:
        heat = self._spec(spec)
        schedule = schedule_for(heat)
        rec = copy.deepcopy(recipe)
        for srv in rec["servers"].values():
            if srv["mode"] == "remote":  # the guard's own deadline for what it holds
                srv["expires_at"] = rec.get("_expires_at")
        actions: list[dict[str, Any]] = []
        events = schedule.events
        while rec["applied"] < len(events) and events[rec["applied"]].real_s <= elapsed_s:
            event = events[rec["applied"]]
            rec["applied"] += 1
            actions.append(self._apply(event, rec, elapsed_s, heat, ctx))
        actions += self._tend(rec, elapsed_s)
        self._duty_cycle(rec, elapsed_s)
        return rec, actions

    @staticmethod
    def _base(event: HeatEvent, elapsed_s: float) -> dict[str, Any]:
        return {
            "model_s": event.model_s,
            "model_time": format_model_time(event.model_s),
            "planned_s": round(event.real_s, 4),
            "elapsed_s": round(elapsed_s, 4),
            "late_s": round(elapsed_s - event.real_s, 4),
            "room_c": event.room_c,
        }

    def _live(self, rec: Recipe, srv: dict[str, Any]) -> list[int]:
        if srv["locator"] is None:
            return []
        locator = ProcessLocator.model_validate(srv["locator"])
        return find_processes(locator, Path(rec["base_dir"]))

    def _apply(
        self,
        event: HeatEvent,
        rec: Recipe,
        elapsed_s: float,
        heat: HeatFaultSpec,
        ctx: FaultContext,
    ) -> dict[str, Any]:
        action = self._base(event, elapsed_s)
        if event.server is None:
            action["action"] = event.action
            if event.action == "cooling_restored":
                action["ends_fault"] = True
                action["detail"] = "cooling restored: recovery is counted from here"
            else:
                action["detail"] = "cooling lost"
            return action
        name = event.server
        srv = rec["servers"][name]
        prev = srv["state"]
        srv["state"] = event.state
        action.update(
            {"server": name, "from": prev, "state": event.state, "inlet_c": event.inlet_c}
        )
        if srv["mode"] in ("network", "docker"):
            action["action"] = "restart" if event.action == "restart" else str(event.state)
            action["detail"] = _delegate_apply(heat, name, srv, str(event.state), ctx)
            return action
        if srv["mode"] == "remote":
            return self._apply_remote(action, event, prev, heat, name, srv, elapsed_s)
        if event.action == "restart":
            srv["restarts"] = srv.get("restarts", 0) + 1
            action["action"] = "restart"
            action["detail"] = self._restart(rec, name, srv, elapsed_s)
        elif event.state in ("shutdown", "power-off"):
            action["action"] = event.state
            action["detail"] = self._stop(rec, name, srv, event.state == "power-off")
            # a server that had come back and trips again: the flapping the report counts
            action["relapse"] = bool(srv.get("restarts", 0))
        elif event.state == "lost":
            action["action"] = "lost"
            action["detail"] = "hardware lost: stays off until the fault ends (manual repair)"
        elif event.state in THROTTLED_STATES:
            if prev not in THROTTLED_STATES:
                # the duty cycle starts with a stop, so the throttle takes effect at once
                srv["throttle_since"] = elapsed_s
                action["action"] = "throttle"
                action["detail"] = (
                    f"duty cycle: stopped {rec['throttle']['stop_fraction']:.0%} of every "
                    f"{rec['throttle']['period_s']:g}s"
                )
            else:
                action["action"] = event.state
                action["detail"] = f"{prev} -> {event.state} (still throttled)"
        else:
            action["action"] = "unthrottle"
            action["detail"] = "resumed: " + self._resume(srv)
        return action

    @staticmethod
    def _apply_remote(
        action: dict[str, Any],
        event: HeatEvent,
        prev: str,
        heat: HeatFaultSpec,
        name: str,
        srv: dict[str, Any],
        elapsed_s: float,
    ) -> dict[str, Any]:
        """A host in the hot room: the same states, played by the host's guard."""
        if event.action == "restart":
            srv["restarts"] = srv.get("restarts", 0) + 1
            action["action"] = "restart"
            action["detail"] = remote_heat.restart(heat, name, srv, elapsed_s)
        elif event.state in ("shutdown", "power-off"):
            action["action"] = event.state
            action["detail"] = remote_heat.stop(heat, name, srv, event.state == "power-off")
            action["relapse"] = bool(srv.get("restarts", 0))
        elif event.state == "lost":
            action["action"] = "lost"
            action["detail"] = "hardware lost: stays off until the fault ends (manual repair)"
        elif event.state in THROTTLED_STATES:
            action["action"] = "throttle" if prev not in THROTTLED_STATES else event.state
            action["detail"] = remote_heat.throttle(heat, name, srv)
        else:
            action["action"] = "unthrottle"
            action["detail"] = remote_heat.unthrottle(heat, name, srv)
        return action

    def _resume(self, srv: dict[str, Any]) -> str:
        resumed = [
            str(p["pid"])
            for p in srv["pids"]
            if proc_state(p["pid"]) == "T" and _signal(p["pid"], p["start_time"], signal.SIGCONT)
        ]
        return ", ".join(resumed) or "nothing stopped"

    def _freeze_supervisor(self, rec: Recipe, key: str | None, frozen: bool) -> str | None:
        if key is None:
            return None
        sup = rec["supervisors"][key]
        if sup["frozen"] == frozen:
            return None
        sig = signal.SIGSTOP if frozen else signal.SIGCONT
        if _signal(sup["pid"], sup["start_time"], sig):
            sup["frozen"] = frozen
            return f"supervisor {sup['pid']} {'frozen' if frozen else 'resumed'}"
        sup["frozen"] = False
        return f"supervisor {sup['pid']} is gone"

    def _stop(self, rec: Recipe, name: str, srv: dict[str, Any], hard: bool) -> str:
        notes = []
        if srv["mode"] == "supervisor":
            note = self._freeze_supervisor(rec, srv["supervisor"], True)
            if note:
                notes.append(note)
        sig = signal.SIGKILL if hard else signal.SIGTERM
        sent = []
        for p in srv["pids"]:
            if _signal(p["pid"], p["start_time"], sig):
                # a stopped process only acts on SIGTERM once continued
                _signal(p["pid"], p["start_time"], signal.SIGCONT)
                sent.append(str(p["pid"]))
                srv["shut"].append(p)
        srv["awaiting_up"] = False
        notes.insert(0, f"{'SIGKILL' if hard else 'SIGTERM'} to {', '.join(sent) or 'nothing'}")
        return "; ".join(notes)

    def _restart(self, rec: Recipe, name: str, srv: dict[str, Any], elapsed_s: float) -> str:
        srv["restart_requested_s"] = elapsed_s
        srv["awaiting_up"] = True
        if srv["mode"] == "command":
            if len(self._live(rec, srv)) >= srv["expected"]:
                return "already running"
            return run_restart_command(srv["restart"])
        if srv["mode"] == "supervisor":
            note = self._freeze_supervisor(rec, srv["supervisor"], False)
            return note or "left to its supervisor"
        return "no way to restart it"

    def _tend(self, rec: Recipe, elapsed_s: float) -> list[dict[str, Any]]:
        """Observe restarts, keep held servers down, and re-freeze supervisors when done."""
        actions: list[dict[str, Any]] = []
        for name, srv in rec["servers"].items():
            if srv["mode"] == "remote":
                actions += remote_heat.tend(name, srv, elapsed_s)
                continue
            if srv["awaiting_up"]:
                live = self._live(rec, srv)
                shut = {p["pid"] for p in srv["shut"]}
                fresh = [p for p in live if p not in shut]
                if len(fresh) >= srv["expected"]:
                    entries = [e for e in (_proc_entry(p) for p in fresh) if e is not None]
                    srv["pids"] = entries
                    srv["shut"] = []
                    srv["awaiting_up"] = False
                    took = elapsed_s - float(srv["restart_requested_s"])
                    actions.append(
                        {
                            "action": "up",
                            "server": name,
                            "state": srv["state"],
                            "elapsed_s": round(elapsed_s, 4),
                            "restart_took_s": round(took, 4),
                            "detail": f"running again as pid {', '.join(map(str, fresh))} "
                            f"(measured, not scaled)",
                        }
                    )
            elif srv["state"] in OFF_STATES and srv["mode"] == "supervisor":
                shut = {p["pid"] for p in srv["shut"]}
                for pid in self._live(rec, srv):
                    if pid in shut:
                        continue
                    entry = _proc_entry(pid)
                    if entry and _signal(pid, entry["start_time"], signal.SIGKILL):
                        srv["shut"].append(entry)
                        actions.append(
                            {
                                "action": "held",
                                "server": name,
                                "state": srv["state"],
                                "elapsed_s": round(elapsed_s, 4),
                                "detail": f"its supervisor restarted it as pid {pid} while it "
                                "must stay off: killed at boot",
                            }
                        )
        for key in rec["supervisors"]:
            owned = [s for s in rec["servers"].values() if s["supervisor"] == key]
            held = any(s["state"] in OFF_STATES for s in owned)
            waiting = any(s["awaiting_up"] for s in owned)
            note = self._freeze_supervisor(rec, key, held and not waiting)
            if note:
                actions.append(
                    {"action": "supervisor", "elapsed_s": round(elapsed_s, 4), "detail": note}
                )
        return actions

    def _duty_cycle(self, rec: Recipe, elapsed_s: float) -> None:
        period = float(rec["throttle"]["period_s"])
        fraction = float(rec["throttle"]["stop_fraction"])
        for srv in rec["servers"].values():
            if srv["mode"] == "remote":
                continue  # its guard runs the duty cycle on the host
            if srv["state"] not in THROTTLED_STATES or srv["awaiting_up"]:
                continue
            phase = ((elapsed_s - float(srv.get("throttle_since") or 0.0)) % period) / period
            stop = phase < fraction
            for p in srv["pids"]:
                state = proc_state(p["pid"])
                if stop and state not in ("T", None, "Z", "X"):
                    if _signal(p["pid"], p["start_time"], signal.SIGSTOP) and not any(
                        t["pid"] == p["pid"] for t in srv["touched"]
                    ):
                        srv["touched"].append(p)
                elif not stop and state == "T":
                    _signal(p["pid"], p["start_time"], signal.SIGCONT)

    # -- undo --------------------------------------------------------------------------------

    def _stoppable(self, recipe: Recipe, srv: dict[str, Any]) -> list[dict[str, Any]]:
        """Every process heat may have stopped: recorded ones, and the server's live ones
        (a crash between a SIGSTOP and the journal write leaves a pid the recipe lacks)."""
        found = list(srv["pids"]) + list(srv["touched"])
        known = {p["pid"] for p in found}
        for pid in self._live(recipe, srv):
            entry = _proc_entry(pid)
            if pid not in known and entry is not None:
                found.append(entry)
        return found

    def revert(self, recipe: Recipe) -> str:
        done: list[str] = []
        for sup in recipe["supervisors"].values():
            if _signal(sup["pid"], sup["start_time"], signal.SIGCONT) and sup.get("frozen"):
                done.append(f"supervisor {sup['pid']} resumed")
        for name, srv in recipe["servers"].items():
            if srv["mode"] == "remote":
                done += remote_heat.revert(name, srv)
                continue
            for p in self._stoppable(recipe, srv):
                if proc_state(p["pid"]) == "T" and _signal(
                    p["pid"], p["start_time"], signal.SIGCONT
                ):
                    done.append(f"{name}: SIGCONT {p['pid']}")
            if srv["mode"] == "command" and len(self._live(recipe, srv)) < srv["expected"]:
                run_restart_command(srv["restart"])
                done.append(f"{name}: ran restart command")
            elif srv["mode"] == "supervisor" and srv["state"] in OFF_STATES:
                done.append(f"{name}: left to its supervisor")
            elif srv["mode"] in ("network", "docker") and srv.get("sub"):
                backend = _delegate_backend(srv["mode"])
                done.append(f"{name}: " + backend.revert(srv["sub"]["recipe"]))
        return "; ".join(done) or "nothing to undo"

    def is_injected(self, recipe: Recipe) -> bool:
        for sup in recipe["supervisors"].values():
            if is_same_process(sup["pid"], sup["start_time"]) and proc_state(sup["pid"]) == "T":
                return True
        for srv in recipe["servers"].values():
            if srv["mode"] == "remote":
                if remote_heat.is_injected(srv):
                    return True
                continue
            for p in self._stoppable(recipe, srv):
                if is_same_process(p["pid"], p["start_time"]) and proc_state(p["pid"]) == "T":
                    return True
            # a restart-command server still down is owed a restart by the drill; a
            # supervised one coming back is the system's job, measured not forced
            if srv["mode"] == "command" and len(self._live(recipe, srv)) < srv["expected"]:
                return True
            sub = srv.get("sub") if srv["mode"] in ("network", "docker") else None
            if sub and _delegate_backend(srv["mode"]).is_injected(sub["recipe"]):
                return True
        return False

    def self_heals(self, spec: FaultSpec, ctx: FaultContext) -> bool:
        return False

    def timeline_series(
        self,
        spec: FaultSpec,
        *,
        start_s: float,
        n_buckets: int,
        actions: list[dict[str, object]],
    ) -> dict[str, dict[str, object]]:
        """Report series (temperatures, planned and observed states) for this fault."""
        from resildrill.faults.heat import heat_series

        assert isinstance(spec, HeatFaultSpec)
        return heat_series(spec, start_s=start_s, n_buckets=n_buckets, actions=actions)

    def undo_hint(self, recipe: Recipe) -> str:
        pids = [str(s["pid"]) for s in recipe["supervisors"].values()]
        remote = [
            remote_heat.undo_hint(s) for s in recipe["servers"].values() if s["mode"] == "remote"
        ]
        if remote:
            return "; ".join(dict.fromkeys(remote))
        for srv in recipe["servers"].values():
            pids += [str(p["pid"]) for p in [*srv["pids"], *srv["touched"]]]
        hint = f"kill -CONT {' '.join(dict.fromkeys(pids))}" if pids else ""
        for srv in recipe["servers"].values():
            if srv["mode"] == "command":
                cmd = " ".join(srv["restart"]["command"])
                hint += f"; cd {srv['restart']['cwd']} && {cmd}"
            if srv["mode"] in ("network", "docker") and srv.get("sub"):
                hint += "; " + _delegate_backend(srv["mode"]).undo_hint(srv["sub"]["recipe"])
        return hint.strip("; ") or "nothing to undo"
