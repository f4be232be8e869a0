"""What fault backends do on a remote host, through its guard; undo from a recipe alone.

A recipe for a remote fault carries a ``host`` record (:func:`host_record`: the host's name,
its connection settings, never a secret) and the ``run_id``, so the runner, its watchdog
(another process) and ``resildrill rollback`` (days later) can each reach the guard's
journal on the host. In the runner the live :class:`GuardSession` is used; elsewhere, or
once contact is lost, a fresh SSH connection runs ``guard.py rollback`` / ``inspect``, which
read the host's journal. Reconnection after lost contact is tried for up to
:data:`RECONNECT_S` seconds (DESIGN.md: exit 3 when the guard's record shows it reverted).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from resildrill.drill.model import HostSpec, TargetSpec
from resildrill.errors import InvalidInput, ToolFailed
from resildrill.remote.session import SESSIONS, GuardLost, GuardSession
from resildrill.remote.ssh import HostLink

__all__ = [
    "RECONNECT_S",
    "apply",
    "host_record",
    "in_place",
    "one_shot",
    "revert",
    "select",
    "session",
]

RECONNECT_S = 30.0


def host_record(target: TargetSpec, name: str, base_dir: Path) -> dict[str, Any]:
    """What a recipe keeps of a host: enough to reach it again, no secret."""
    spec = target.hosts.get(name)
    if spec is None:
        known = ", ".join(sorted(target.hosts)) or "none"
        raise InvalidInput(f"host {name!r} is not in the target's 'hosts' (known: {known})")
    return {"name": name, "spec": spec.model_dump(mode="json"), "base_dir": str(base_dir)}


def _spec(rec: dict[str, Any]) -> HostSpec:
    return HostSpec.model_validate(rec["spec"])


def session(rec: dict[str, Any], run_id: str) -> GuardSession:
    return SESSIONS.session(rec["name"], _spec(rec), Path(rec["base_dir"]), run_id)


def link(rec: dict[str, Any]) -> HostLink:
    return SESSIONS.link(rec["name"], _spec(rec), Path(rec["base_dir"]))


def one_shot(rec: dict[str, Any], *args: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """Run a guard subcommand over SSH (no live session needed); its JSON answer."""
    host = link(rec)
    path = host.install_guard()
    result = host.run([host.spec.python, path, *args], timeout_s=timeout_s, privileged=True)
    if result.code != 0:
        why = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        raise ToolFailed(f"{host.where}: guard {args[0]} failed: {why[0]}")
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def select(
    rec: dict[str, Any], locator: dict[str, Any], scope: str, run_id: str | None
) -> dict[str, Any]:
    """The processes a locator finds on the host (from the live guard when there is one)."""
    if run_id is not None:
        return session(rec, run_id).call("select", locator=locator, scope=scope)
    return one_shot(rec, "select", "--locator", json.dumps(locator), "--scope", scope)


def apply(
    rec: dict[str, Any], run_id: str, fault_id: str, lifetime_s: float | None, **request: Any
) -> dict[str, Any]:
    """Apply on the host; the answer with ``at_runner_mono`` (the guard's act on our clock)."""
    s = session(rec, run_id)
    answer = s.call("apply", fault=fault_id, lifetime_s=lifetime_s, timeout_s=60.0, **request)
    answer["at_runner_mono"] = s.clock.to_runner(float(answer["at"]))
    answer["clock_uncertainty_s"] = round(s.clock.uncertainty_s, 6)
    return answer


def _reverted_by_guard(
    rec: dict[str, Any], run_id: str, fault_id: str, *, keep_link: bool = False
) -> dict[str, Any]:
    """After lost contact: reconnect (for up to RECONNECT_S), read the host's journal, and
    undo what is left (the guard may have died too). Raises ToolFailed if unreachable."""
    deadline = time.monotonic() + RECONNECT_S
    last: Exception | None = None
    first = True
    while time.monotonic() < deadline:
        try:
            # a live guard's connection is kept (dropping it would end that guard's session
            # and revert every other fault it holds); after lost contact, a fresh one
            if not (first and keep_link):
                SESSIONS.forget_link(rec["name"])
            first = False
            shown = one_shot(
                rec, "inspect", "--state", _spec(rec).state_dir, "--run", run_id, timeout_s=10.0
            )
            mine = [r for r in shown["records"] if r.get("fault") == fault_id]
            last_apply = max(
                (i for i, r in enumerate(mine) if r["t"] in ("applying", "applied")), default=-1
            )
            # only a revert after this fault's latest application counts (ids can be reused)
            record = next((r for r in mine[last_apply + 1 :] if r["t"] == "reverted"), None)
            done = one_shot(
                rec, "rollback", "--state", _spec(rec).state_dir, "--run", run_id,
                "--fault", fault_id,
            )  # fmt: skip
            if done["failed"]:
                raise ToolFailed(f"host {rec['name']!r}: {done['failed'][0]['detail']}")
            if record is not None:
                by = str(record.get("by") or "")
                return {
                    "detail": f"reverted by the host's guard ({by})"
                    if by.startswith("the guard")
                    else f"already reverted on the host ({by})",
                    "by_guard": by.startswith("the guard"),
                    "host_mono": record.get("mono"),
                }
            if done["reverted"]:
                detail = done["reverted"][0]["detail"]
                return {"detail": f"reverted by rollback on the host: {detail}", "by_guard": False}
            return {"detail": "nothing left on the host", "by_guard": False}
        except InvalidInput:
            raise
        except (ToolFailed, OSError, ValueError) as exc:
            last = exc
            time.sleep(1.0)
    raise ToolFailed(
        f"host {rec['name']!r}: unreachable for {RECONNECT_S:g} s ({last}); finish with: "
        f"resildrill rollback"
    )


def revert(rec: dict[str, Any], run_id: str, fault_id: str) -> dict[str, Any]:
    """Undo one fault: through the live guard, else from the host's journal (which also says
    when the guard reverted it by itself)."""
    live = SESSIONS.existing(rec["name"], run_id)
    if live is not None and live.lost() is None:
        try:
            answer = live.call("revert", fault=fault_id, timeout_s=30.0)
            if answer.get("in_place"):
                raise ToolFailed(f"host {rec['name']!r}: still in place after {answer['detail']}")
            if answer["detail"] != "nothing applied":
                answer["at_runner_mono"] = live.clock.to_runner(float(answer["at"]))
                return answer
            # nothing applied any more: the guard ended it itself (its lifetime); its record says
        except GuardLost:
            pass
    alive = live is not None and live.lost() is None
    answer = _reverted_by_guard(rec, run_id, fault_id, keep_link=alive)
    if live is not None and answer.get("host_mono") is not None:
        # a lost session's clock offset still holds: the host's monotonic clock did not jump
        answer["at_runner_mono"] = live.clock.to_runner(float(answer["host_mono"]))
    return answer


def in_place(rec: dict[str, Any], run_id: str, fault_id: str) -> bool:
    """Whether the fault is still in effect on the host, judged by the host (not our notes)."""
    live = SESSIONS.existing(rec["name"], run_id)
    if live is not None and live.lost() is None:
        try:
            return bool(live.call("status", fault=fault_id)["in_place"])
        except GuardLost:
            pass
    shown = one_shot(rec, "inspect", "--state", _spec(rec).state_dir, "--run", run_id)
    return bool(shown["outstanding"].get(fault_id, False))


def restart(rec: dict[str, Any], run_id: str, restart: dict[str, Any]) -> str:
    """Run a service's restart command on its host (detached, output to a log there)."""
    argv = list(restart["command"])
    live = SESSIONS.existing(rec["name"], run_id)
    if live is not None and live.lost() is None:
        live.call("restart", argv=argv, cwd=restart.get("cwd"), log=restart.get("log"))
    else:
        one_shot(rec, "start", "--argv", json.dumps(argv), "--cwd", restart.get("cwd") or "",
                 "--log", restart.get("log") or "")  # fmt: skip
    return f"ran restart command on host {rec['name']!r}: {' '.join(argv)}"
