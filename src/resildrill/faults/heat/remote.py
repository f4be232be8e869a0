"""Heat on a server that is a service on a remote host: its states played by the host's guard.

A heat server named after a target service with ``host:`` is that host in the hot room. Its
states map onto guard actions (:mod:`resildrill.remote.guard`), each a guard fault of its own
(``<heat id>.<server>.throttle``, ``.off.<n>``), journalled on the host and reverted by the
guard itself if the runner goes quiet:

- **throttled / warning / caution**: the guard runs the SIGSTOP/SIGCONT duty cycle on the
  server's processes with the host's own clock (``throttle.period``, ``stop_fraction``);
- **shutdown / power-off**: the guard freezes the server's supervisor (its parent process on
  the host) and sends SIGTERM / SIGKILL, so nothing restarts it while it must stay off;
- **restart** (cooled down): the supervisor is resumed and restarts it; the runner watches the
  host until new processes answer the locator (``up``, with the measured time);
- a server with ``recovery: restart`` has its restart command run on the host instead.
"""

from __future__ import annotations

import time
from typing import Any

from resildrill.errors import InjectionFailed
from resildrill.faults.base import FaultContext
from resildrill.faults.heat.model import OFF_STATES
from resildrill.remote import hostops


def _fault_id(heat_id: str, name: str, what: str) -> str:
    return f"{heat_id}.{name}.{what}"


def problems(name: str, service: Any, goes_off: bool, ctx: FaultContext) -> list[str]:
    rec = hostops.host_record(ctx.target, service.host, ctx.target_dir)
    found = hostops.select(rec, service.process.model_dump(mode="json", exclude_none=True),
                           "process", None)  # fmt: skip
    located = found["processes"]
    out = []
    if len(located) != service.process.count:
        out.append(
            f"server {name!r} on host {service.host!r}: expected {service.process.count} "
            f"process(es), found {len(located)}"
        )
    elif goes_off and service.recovery == "supervisor":
        parents = {p.get("ppid") for p in located}
        if len(parents) != 1 or (parents.pop() or 0) <= 1:
            out.append(
                f"server {name!r} shuts down in the plan and its supervisor on host "
                f"{service.host!r} cannot be found (its processes have no common parent)"
            )
    elif goes_off and service.recovery == "none":
        out.append(f"server {name!r} shuts down in the plan but has recovery 'none'")
    return out


def prepare(name: str, service: Any, ctx: FaultContext) -> dict[str, Any]:
    rec = hostops.host_record(ctx.target, service.host, ctx.target_dir)
    locator = service.process.model_dump(mode="json", exclude_none=True)
    found = hostops.select(rec, locator, "process", ctx.run_id)["processes"]
    if len(found) != service.process.count:
        raise InjectionFailed(
            f"server {name!r} on host {service.host!r}: expected {service.process.count} "
            f"process(es), found {len(found)}; nothing injected"
        )
    parents = sorted({p["ppid"] for p in found if p.get("ppid")})
    supervisor = None
    if service.recovery == "supervisor" and len(parents) == 1 and parents[0] > 1:
        sup = hostops.select(rec, {"pid": parents[0]}, "process", ctx.run_id)["processes"]
        supervisor = sup[0] if sup else None
    restart = None
    if service.recovery == "restart" and service.restart is not None:
        restart = {"command": list(service.restart.command), "cwd": service.restart.cwd,
                   "log": None}  # fmt: skip
    return {
        "state": "normal",
        "mode": "remote",
        "host": rec,
        "run_id": ctx.run_id,
        "locator": locator,
        "expected": service.process.count,
        "pids": [{"pid": p["pid"], "start_time": p["start_time"]} for p in found],
        "supervisor_proc": supervisor,
        "restart": restart,
        "recovery": service.recovery,
        "active": [],  # guard faults in place now
        "offs": 0,
        "shut": [],
        "touched": [],
        "supervisor": None,
        "restart_requested_s": None,
        "awaiting_up": False,
    }


def _apply(srv: dict[str, Any], fault_id: str, **request: Any) -> dict[str, Any]:
    # tracked before the call: a failed or unanswered apply is still reverted (from the
    # host's journal if the guard never answered)
    srv["active"].append(fault_id)
    expires = srv.get("expires_at")
    lifetime = None if expires is None else max(0.0, float(expires) - time.monotonic())
    return hostops.apply(srv["host"], srv["run_id"], fault_id, lifetime, **request)


def _revert(srv: dict[str, Any], fault_id: str) -> str:
    if fault_id not in srv["active"]:
        return "nothing to undo"
    answer = hostops.revert(srv["host"], srv["run_id"], fault_id)
    srv["active"].remove(fault_id)
    return str(answer["detail"])


def throttle(heat: Any, name: str, srv: dict[str, Any]) -> str:
    fid = _fault_id(heat.id, name, "throttle")
    if fid in srv["active"]:
        return "still throttled"
    _apply(srv, fid, action="throttle", processes=srv["pids"],
           period_s=heat.throttle.period, stop_fraction=heat.throttle.stop_fraction)  # fmt: skip
    return (
        f"duty cycle on host {srv['host']['name']!r}, run by its guard: stopped "
        f"{heat.throttle.stop_fraction:.0%} of every {heat.throttle.period:g}s"
    )


def unthrottle(heat: Any, name: str, srv: dict[str, Any]) -> str:
    return "resumed: " + _revert(srv, _fault_id(heat.id, name, "throttle"))


def stop(heat: Any, name: str, srv: dict[str, Any], hard: bool) -> str:
    notes = []
    if _fault_id(heat.id, name, "throttle") in srv["active"]:
        notes.append(unthrottle(heat, name, srv))
    srv["offs"] += 1
    fid = _fault_id(heat.id, name, f"off.{srv['offs']}")
    parents = [srv["supervisor_proc"]] if srv["supervisor_proc"] else []
    answer = _apply(srv, fid, action="hold", processes=srv["pids"], parents=parents,
                    signal="KILL" if hard else "TERM")  # fmt: skip
    srv["shut"] = list(srv["pids"])
    srv["awaiting_up"] = False
    sig = "SIGKILL" if hard else "SIGTERM"
    sent = ", ".join(map(str, answer.get("signalled") or [])) or "nothing"
    held = f"; supervisor {parents[0]['pid']} frozen" if answer.get("frozen") else ""
    return "; ".join([*notes, f"{sig} to {sent} on host {srv['host']['name']!r}{held}"])


def restart(heat: Any, name: str, srv: dict[str, Any], elapsed_s: float) -> str:
    srv["restart_requested_s"] = elapsed_s
    srv["awaiting_up"] = True
    offs = [f for f in srv["active"] if ".off." in f]
    notes = [_revert(srv, f) for f in offs]  # the supervisor resumed: it restarts the server
    if srv["restart"] is not None:
        notes.append(hostops.restart(srv["host"], srv["run_id"], srv["restart"]))
    return "; ".join(notes) or "left to its supervisor"


def tend(name: str, srv: dict[str, Any], elapsed_s: float) -> list[dict[str, Any]]:
    """A server coming back: new processes on the host answer its locator."""
    if not srv["awaiting_up"]:
        return []
    found = hostops.select(srv["host"], srv["locator"], "process", srv["run_id"])["processes"]
    shut = {(p["pid"], p["start_time"]) for p in srv["shut"]}
    fresh = [p for p in found if (p["pid"], p["start_time"]) not in shut]
    if len(fresh) < srv["expected"]:
        return []
    srv["pids"] = [{"pid": p["pid"], "start_time": p["start_time"]} for p in fresh]
    srv["shut"], srv["awaiting_up"] = [], False
    took = elapsed_s - float(srv["restart_requested_s"])
    return [
        {
            "action": "up",
            "server": name,
            "state": srv["state"],
            "elapsed_s": round(elapsed_s, 4),
            "restart_took_s": round(took, 4),
            "detail": f"running again on host {srv['host']['name']!r} as pid "
            f"{', '.join(str(p['pid']) for p in fresh)} (measured, not scaled)",
        }
    ]


def revert(name: str, srv: dict[str, Any]) -> list[str]:
    done = [f"{name}: {_revert(srv, f)}" for f in list(reversed(srv["active"]))]
    if srv["state"] in OFF_STATES and srv["restart"] is not None:
        found = hostops.select(srv["host"], srv["locator"], "process", None)["processes"]
        if len(found) < srv["expected"]:
            done.append(f"{name}: " + hostops.restart(srv["host"], srv["run_id"], srv["restart"]))
    return done


def is_injected(srv: dict[str, Any]) -> bool:
    return any(hostops.in_place(srv["host"], srv["run_id"], f) for f in srv["active"])


def undo_hint(srv: dict[str, Any]) -> str:
    return (
        f"resildrill rollback (host {srv['host']['name']!r}: the guard undoes it from its journal)"
    )
