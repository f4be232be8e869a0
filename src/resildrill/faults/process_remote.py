"""Fault kind ``process`` on a service with ``host:``: the same actions, done by the host's guard.

The process backend hands a fault here when its service names a host. Selection (pidfile,
match, pid or systemd unit, ``scope: tree``) happens on the host, by the guard, with start
times; the guard signals, journals on the host and undoes a freeze by itself if the runner
goes quiet. A ``recovery: restart`` command runs on the host (argv as written, no shell).
Times: the guard reports when it signalled on its own clock; the session's measured offset
places that on the runner's clock (``hosts_timing`` in the recipe, with its uncertainty).
"""

from __future__ import annotations

from typing import Any

from resildrill.errors import InjectionFailed
from resildrill.faults.base import FaultContext, Recipe
from resildrill.remote import hostops

_SIGNAL_NAMES = {"kill": "KILL", "terminate": "TERM", "freeze": "STOP"}


def preflight(spec: Any, service: Any, ctx: FaultContext) -> list[str]:
    """Connect (host key, key auth: InvalidInput if refused) and select read-only."""
    rec = hostops.host_record(ctx.target, service.host, ctx.target_dir)
    found = hostops.select(rec, _locator(service, ctx), spec.scope, None)
    located = [p for p in found["processes"] if "descendant_of" not in p]
    problems = [found["problem"]] if found.get("problem") else []
    if len(located) != service.process.count:
        problems.append(
            f"service {spec.service!r} on host {service.host!r}: expected "
            f"{service.process.count} process(es), found {len(located)}"
        )
    return problems


def _locator(service: Any, ctx: FaultContext) -> dict[str, Any]:
    locator: dict[str, Any] = service.process.model_dump(mode="json", exclude_none=True)
    return locator


def prepare(spec: Any, service: Any, ctx: FaultContext) -> Recipe:
    rec = hostops.host_record(ctx.target, service.host, ctx.target_dir)
    try:
        found = hostops.select(rec, _locator(service, ctx), spec.scope, ctx.run_id)
    except InjectionFailed:
        raise
    except Exception as exc:
        raise InjectionFailed(f"host {service.host!r}: {exc}") from exc
    located = [p for p in found["processes"] if "descendant_of" not in p]
    if len(located) != service.process.count:
        why = f" ({found['problem']})" if found.get("problem") else ""
        raise InjectionFailed(
            f"service {spec.service!r} on host {service.host!r}: expected "
            f"{service.process.count} process(es), found {len(located)}{why}; nothing injected"
        )
    restart = None
    if service.recovery == "restart" and service.restart is not None:
        restart = {
            "command": list(service.restart.command),
            "cwd": service.restart.cwd,  # on the host; None: the user's home
            "delay_s": service.restart.delay,
            "log": f"{rec['spec']['state_dir']}/{ctx.run_id}-restart-{spec.service}.log",
        }
    return {
        "kind": "process",
        "service": spec.service,
        "action": spec.action,
        "processes": found["processes"],
        "locator": _locator(service, ctx),
        "recovery": service.recovery,
        "restart": restart,
        "host": rec,
        "run_id": ctx.run_id,
        "fault_id": spec.id,
    }


def inject(recipe: Recipe, ctx: FaultContext) -> Recipe:
    expires = recipe.get("_expires_at")
    lifetime = None if expires is None else max(0.0, float(expires) - ctx.clock.monotonic())
    try:
        answer = hostops.apply(
            recipe["host"], recipe["run_id"], recipe["fault_id"], lifetime,
            action="signal", signal=_SIGNAL_NAMES[recipe["action"]],
            processes=recipe["processes"],
        )  # fmt: skip
    except Exception as exc:
        raise InjectionFailed(f"host {recipe['host']['name']!r}: {exc}") from exc
    return {
        **recipe,
        "hosts_timing": [
            {
                "host": recipe["host"]["name"],
                "injected_mono": answer["at_runner_mono"],
                "uncertainty_s": answer["clock_uncertainty_s"],
                "signalled": answer.get("signalled"),
            }
        ],
    }


def _count_now(recipe: Recipe) -> int:
    found = hostops.select(recipe["host"], recipe["locator"], "process", None)
    return len(found["processes"])


def is_injected(recipe: Recipe) -> bool:
    if recipe["action"] == "freeze":
        return hostops.in_place(recipe["host"], recipe["run_id"], recipe["fault_id"])
    if recipe.get("restart") is None:
        return False
    return _count_now(recipe) < int(recipe["locator"].get("count", 1))


def revert(recipe: Recipe) -> str:
    if recipe["action"] == "freeze":
        answer = hostops.revert(recipe["host"], recipe["run_id"], recipe["fault_id"])
        for t in recipe.get("hosts_timing") or []:
            t["reverted_mono"] = answer.get("at_runner_mono")
            t["reverted_by"] = "guard" if answer.get("by_guard") else "runner"
        return f"host {recipe['host']['name']!r}: {answer['detail']}"
    if recipe.get("restart") is None or not is_injected(recipe):
        return "nothing to restart"
    return hostops.restart(recipe["host"], recipe["run_id"], recipe["restart"])


def undo_hint(recipe: Recipe) -> str:
    host = recipe["host"]
    spec = host["spec"]
    ssh = f"ssh -p {spec['port']} {spec['user']}@{spec['address']}"
    if recipe["action"] == "freeze":
        pids = " ".join(str(p["pid"]) for p in recipe["processes"])
        return f"resildrill rollback (or: {ssh} kill -CONT {pids})"
    if recipe.get("restart"):
        return f"{ssh} {' '.join(recipe['restart']['command'])}"
    return f"restart service {recipe['service']} on host {host['name']} by hand"
