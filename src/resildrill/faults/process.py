"""Fault kind ``process``: kill, terminate or freeze a local service process.

Processes are found through the target's ``process`` locator (pidfile, pid, or exact
command line) and must number exactly what the locator declares. A pid is always recorded
with its start time from ``/proc/PID/stat`` and re-checked before any signal, so a pid the
kernel has reused for another program is never hit. The runner's own process tree is
never a candidate.

How the service comes back is the target's choice: its own ``supervisor`` (recovery is
counted from the injection) or a ``restart`` command the drill runs when the fault ends.

``scope: tree`` signals the located process *and every descendant* (each recorded with its
start time at preparation), for a server that is a family of processes: PostgreSQL's
postmaster only accepts new sessions, so freezing it alone leaves every open session
working, while a frozen host freezes the backends too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from resildrill.drill.model import Duration, FaultSpec, ProcessLocator, ServiceSpec
from resildrill.errors import InjectionFailed
from resildrill.faults import process_remote
from resildrill.faults.base import BackendHooks, FaultContext, Recipe
from resildrill.remote import guard as guard_proc
from resildrill.remote.hooks import RemoteHooks


class ProcessFaultSpec(FaultSpec):
    """Kill (SIGKILL), terminate (SIGTERM) or freeze (SIGSTOP, reverted by SIGCONT)."""

    kind: Literal["process"]
    service: str = Field(description="a service of the target with a 'process' locator")
    action: Literal["kill", "terminate", "freeze"]
    scope: Literal["process", "tree"] = Field(
        default="process",
        description="process: the located process(es) only; tree: with every descendant "
        "(a whole server: PostgreSQL's postmaster and its backends)",
    )
    during: list[Literal["pwrite", "write", "fsync"]] | None = Field(
        default=None,
        description="aim the signal at a moment one of the process's threads is inside one of "
        "these system calls (pwrite: a database's page or log write; fsync: a commit's flush), "
        "e.g. a kill mid-commit; local processes only",
    )
    aim_within: Duration = Field(
        default=10.0,
        description="with 'during': signal anyway after this long, and the report says the "
        "moment was not caught",
    )


# --- aiming at a system call ------------------------------------------------------------

#: System call numbers by machine and the names a drill uses for them (Linux's tables:
#: arch/x86/entry/syscalls/syscall_64.tbl, include/uapi/asm-generic/unistd.h for arm64).
_SYSCALLS: dict[str, dict[str, dict[int, str]]] = {
    "x86_64": {
        "pwrite": {18: "pwrite64", 296: "pwritev", 328: "pwritev2"},
        "write": {1: "write", 20: "writev"},
        "fsync": {74: "fsync", 75: "fdatasync", 277: "sync_file_range"},
    },
    "aarch64": {
        "pwrite": {68: "pwrite64", 70: "pwritev", 287: "pwritev2"},
        "write": {64: "write", 66: "writev"},
        "fsync": {82: "fsync", 83: "fdatasync", 84: "sync_file_range"},
    },
}


class _Denied(Exception):
    """/proc/PID/task/TID/syscall is not readable by us (ptrace rights: Yama, another user)."""


def _in_syscall(pids: list[int], wanted: dict[int, str]) -> str | None:
    """``name (pid/tid)`` of a thread now inside one of ``wanted``, else None.

    ``/proc/PID/task/TID/syscall`` starts with the number of the call a blocked thread is in
    ("running" when it is on a CPU): readable with ptrace-attach rights over the process.
    Raises :class:`_Denied` when it is not readable at all.
    """
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/syscall", "rb") as f:
                    head = f.read(8).split(b" ", 1)[0]
            except PermissionError:
                raise _Denied(f"/proc/{pid}/task/{tid}/syscall") from None
            except OSError:
                continue
            if head.isdigit() and int(head) in wanted:
                return f"{wanted[int(head)]} ({pid}/{tid})"
    return None


def aim(pids: list[int], during: list[str], within_s: float) -> dict[str, Any]:
    """Wait until a thread of ``pids`` is inside one of the ``during`` calls (or
    ``within_s`` passed); what was caught, after how long. Polls as fast as /proc answers:
    a flush lasts milliseconds."""
    table = _SYSCALLS.get(os.uname().machine, {})
    wanted = {n: name for what in during for n, name in table.get(what, {}).items()}
    started = time.monotonic()
    polls = 0
    while wanted:
        polls += 1
        try:
            caught = _in_syscall(pids, wanted)
        except _Denied as exc:
            took = round(time.monotonic() - started, 4)
            why = f"cannot read {exc} (ptrace rights: run as the process's owner, or root)"
            return {"caught": None, "after_s": took, "polls": polls, "why": why}
        if caught is not None:
            return {
                "caught": caught,
                "after_s": round(time.monotonic() - started, 4),
                "polls": polls,
            }
        if time.monotonic() - started > within_s:
            break
        if polls % 200 == 0:
            time.sleep(0)  # let the target run on a busy machine
    why = "no such thread state in time" if wanted else f"no table for {os.uname().machine}"
    return {"caught": None, "after_s": round(time.monotonic() - started, 4), "polls": polls,
            "why": why}  # fmt: skip


# --- /proc helpers --------------------------------------------------------------------


# One definition of what /proc says, shared with the guard that runs on remote hosts (a
# stand-alone stdlib file, so it owns them and this module imports them).
_stat = guard_proc._stat
proc_start_time = guard_proc.start_time
proc_state = guard_proc.state
proc_cmdline = guard_proc.cmdline
is_same_process = guard_proc.same_process
descendants = guard_proc.descendants


def proc_ppid(pid: int) -> int | None:
    """The parent pid of a process (field 4 of /proc/PID/stat), or None if it is gone."""
    fields = _stat(pid)
    return None if fields is None else int(fields[1])


def _ancestors(pid: int) -> set[int]:
    seen: set[int] = set()
    parent: int | None = pid
    while parent is not None and parent > 1 and parent not in seen:
        seen.add(parent)
        parent = proc_ppid(parent)
    return seen


def _started_wall(pid: int) -> float | None:
    """When a process started, on the wall clock (boot time + its start ticks)."""
    ticks = proc_start_time(pid)
    if ticks is None:
        return None
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return int(line.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    return None


def read_pidfile(path: Path) -> tuple[int | None, str | None]:
    """The pid a pidfile names if it still names that process, else why not.

    ``PID STARTTIME`` (as the bundled ward EHR writes): the start time must match. A bare
    ``PID``: the process must not have started after the pidfile was written (a pid reused
    by an unrelated process since is never signalled).
    """
    try:
        text, written = path.read_text(), path.stat().st_mtime
    except OSError as exc:
        return None, f"pidfile {path}: {exc.strerror}"
    fields = text.split()
    if not fields or not fields[0].isdigit():
        return None, f"pidfile {path}: no pid in it"
    pid = int(fields[0])
    if proc_state(pid) in (None, "Z", "X"):
        return None, f"pidfile {path}: pid {pid} is not running"
    if len(fields) > 1 and fields[1].isdigit():
        if proc_start_time(pid) != int(fields[1]):
            return None, (
                f"pidfile {path}: pid {pid} is now another process (start time differs): a "
                "stale pidfile; nothing signalled"
            )
        return pid, None
    started = _started_wall(pid)
    if started is not None and started > written + 1.0:
        return None, (
            f"pidfile {path}: pid {pid} started after the pidfile was written: a stale "
            "pidfile naming an unrelated process; nothing signalled"
        )
    return pid, None


def locator_problems(locator: ProcessLocator, base_dir: Path) -> list[str]:
    """Why a pidfile locator finds nothing it may signal (empty when it is fine)."""
    if locator.pidfile is None:
        return []
    path = Path(locator.pidfile)
    _pid, problem = read_pidfile(path if path.is_absolute() else base_dir / path)
    return [problem] if problem else []


def find_processes(locator: ProcessLocator, base_dir: Path) -> list[int]:
    """Pids the locator finds right now (live, not zombies), excluding this process and its
    ancestors. Not its descendants: `resildrill demo` starts the system it drills. A pidfile
    counts only while it still names its process (:func:`read_pidfile`)."""
    own = _ancestors(os.getpid())
    pids: list[int] = []
    if locator.pid is not None:
        pids = [locator.pid]
    elif locator.pidfile is not None:
        path = Path(locator.pidfile)
        pid, _problem = read_pidfile(path if path.is_absolute() else base_dir / path)
        pids = [] if pid is None else [pid]
    elif locator.match is not None:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and proc_cmdline(int(entry.name)) == locator.match:
                pids.append(int(entry.name))
    elif locator.unit is not None:
        from resildrill.remote.guard import unit_pids  # one definition of a unit's processes

        pids = unit_pids(locator.unit)
    return [p for p in pids if p not in own and proc_state(p) not in (None, "Z", "X")]


def run_restart_command(restart: dict[str, Any]) -> str:
    """Start a service's restart command detached (own session), as a supervisor would; its
    output goes to the log the recipe names (in the run's folder), so a failing restart
    leaves a trace."""
    log_path = restart.get("log")
    with contextlib.ExitStack() as stack:
        out: Any = subprocess.DEVNULL
        if log_path:
            with contextlib.suppress(OSError):
                out = stack.enter_context(open(log_path, "ab"))
        subprocess.Popen(  # the command comes from the target file, as documented
            restart["command"],
            cwd=restart["cwd"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if out is not subprocess.DEVNULL else subprocess.DEVNULL,
            start_new_session=True,
        )
    where = f" (output: {log_path})" if log_path else ""
    return f"ran restart command: {' '.join(restart['command'])}{where}"


# --- the backend ----------------------------------------------------------------------

_SIGNALS = {"kill": signal.SIGKILL, "terminate": signal.SIGTERM, "freeze": signal.SIGSTOP}


class ProcessFaultBackend(RemoteHooks, BackendHooks):
    """Signals to local processes, each checked against its recorded start time."""

    kind: ClassVar[str] = "process"
    spec_model: ClassVar[type[FaultSpec]] = ProcessFaultSpec

    # -- resolution ------------------------------------------------------------------

    @staticmethod
    def _service(spec: FaultSpec, ctx: FaultContext) -> ServiceSpec:
        assert isinstance(spec, ProcessFaultSpec)
        service = ctx.target.services.get(spec.service)
        if service is None:
            known = ", ".join(sorted(ctx.target.services)) or "none"
            raise InjectionFailed(f"service {spec.service!r} is not in the target (known: {known})")
        if service.process is None:
            raise InjectionFailed(f"service {spec.service!r} has no 'process' locator")
        return service

    def remote_hosts(self, spec: FaultSpec, ctx: FaultContext) -> list[str]:
        assert isinstance(spec, ProcessFaultSpec)
        service = ctx.target.services.get(spec.service)
        return [service.host] if service is not None and service.host else []

    def preflight(self, spec: FaultSpec, ctx: FaultContext) -> list[str]:
        try:
            service = self._service(spec, ctx)
        except InjectionFailed as exc:
            return [str(exc)]
        assert service.process is not None
        if service.host is not None:
            if getattr(spec, "during", None):
                return ["'during' aims at local processes only (this service is on a remote host)"]
            return process_remote.preflight(spec, service, ctx)
        pids = find_processes(service.process, ctx.run_dir)
        problems = locator_problems(service.process, ctx.run_dir)
        if len(pids) != service.process.count:
            problems.append(
                f"service {getattr(spec, 'service', '?')!r}: expected "
                f"{service.process.count} process(es), found {len(pids)}"
            )
        for pid in pids:
            if pid in ctx.protected_pids:
                problems.append(f"pid {pid} belongs to resildrill itself")
                continue
            try:
                os.kill(pid, 0)  # signal 0: may this user signal it? (delivers nothing)
            except PermissionError:
                problems.append(f"pid {pid}: no permission to signal it (run as its owner)")
            except ProcessLookupError:
                problems.append(f"pid {pid}: gone")
        return problems

    def prepare(self, spec: FaultSpec, ctx: FaultContext) -> Recipe:
        assert isinstance(spec, ProcessFaultSpec)
        service = self._service(spec, ctx)
        assert service.process is not None
        if service.host is not None:
            return process_remote.prepare(spec, service, ctx)
        base_dir = ctx.run_dir
        pids = find_processes(service.process, base_dir)
        if len(pids) != service.process.count:
            why = "; ".join(locator_problems(service.process, base_dir))
            raise InjectionFailed(
                f"service {spec.service!r}: expected {service.process.count} process(es), "
                f"found {len(pids)}{f' ({why})' if why else ''}; nothing injected"
            )
        targets = []
        for pid in pids:
            start = proc_start_time(pid)
            if start is None:
                raise InjectionFailed(f"service {spec.service!r}: pid {pid} vanished")
            targets.append({"pid": pid, "start_time": start, "cmdline": proc_cmdline(pid)})
            if spec.scope == "tree":
                for child in descendants(pid):
                    child_start = proc_start_time(child)
                    if child_start is not None and child not in ctx.protected_pids:
                        targets.append(
                            {
                                "pid": child,
                                "start_time": child_start,
                                "cmdline": proc_cmdline(child),
                                "descendant_of": pid,
                            }
                        )
        restart: dict[str, Any] | None = None
        if service.recovery == "restart" and service.restart is not None:
            cwd = Path(service.restart.cwd) if service.restart.cwd else ctx.target_dir
            restart = {
                "command": list(service.restart.command),
                "cwd": str(cwd if cwd.is_absolute() else ctx.target_dir / cwd),
                "delay_s": service.restart.delay,
                "log": None
                if ctx.report_dir is None
                else str(ctx.report_dir / f"restart-{spec.service}.log"),
            }
        return {
            "kind": self.kind,
            "service": spec.service,
            "action": spec.action,
            "processes": targets,
            "locator": service.process.model_dump(mode="json"),
            "base_dir": str(base_dir),
            "recovery": service.recovery,
            "restart": restart,
            "during": spec.during,
            "aim_within": spec.aim_within,
        }

    def inject(self, spec: FaultSpec, recipe: Recipe, ctx: FaultContext) -> Recipe:
        if recipe.get("host"):
            return process_remote.inject(recipe, ctx)
        sig = _SIGNALS[recipe["action"]]
        located = [p for p in recipe["processes"] if "descendant_of" not in p]
        for proc in located:
            if not is_same_process(proc["pid"], proc["start_time"]):
                raise InjectionFailed(f"pid {proc['pid']} is no longer the recorded process")
        if recipe.get("during"):
            # the moment is the point: signal right after catching it, checks done before;
            # every process of the fault is watched (a server's backends do its writes)
            watched = [p["pid"] for p in recipe["processes"]]
            recipe = {**recipe, "aimed": aim(watched, recipe["during"], recipe["aim_within"])}
            for proc in located:  # up to aim_within passed: still the recorded process?
                if not is_same_process(proc["pid"], proc["start_time"]):
                    raise InjectionFailed(
                        f"pid {proc['pid']} ended while the signal was being aimed; nothing sent"
                    )
        # Parents first: a frozen parent forks no new child while its children are signalled.
        for proc in recipe["processes"]:
            # a descendant may have ended on its own since preparation (a session closed)
            if is_same_process(proc["pid"], proc["start_time"]):
                os.kill(proc["pid"], sig)
        return recipe

    # -- undo ------------------------------------------------------------------------

    def _live_service_pids(self, recipe: Recipe) -> list[int]:
        locator = ProcessLocator.model_validate(recipe["locator"])
        return find_processes(locator, Path(recipe["base_dir"]))

    def is_injected(self, recipe: Recipe) -> bool:
        if recipe.get("host"):
            return process_remote.is_injected(recipe)
        if recipe["action"] == "freeze":
            return any(
                is_same_process(p["pid"], p["start_time"]) and proc_state(p["pid"]) == "T"
                for p in recipe["processes"]
            )
        # A killed service counts as still injected only when the drill owes it a restart;
        # a supervised service coming back is the system's job, measured not forced.
        if recipe.get("restart") is None:
            return False
        expected = int(recipe["locator"].get("count", 1))
        return len(self._live_service_pids(recipe)) < expected

    def revert(self, recipe: Recipe) -> str:
        if recipe.get("host"):
            return process_remote.revert(recipe)
        if recipe["action"] == "freeze":
            resumed = []
            for proc in recipe["processes"]:
                if is_same_process(proc["pid"], proc["start_time"]):
                    os.kill(proc["pid"], signal.SIGCONT)
                    resumed.append(str(proc["pid"]))
            return f"SIGCONT to {', '.join(resumed)}" if resumed else "nothing frozen"
        if not self.is_injected(recipe):
            return "nothing to restart"
        return run_restart_command(recipe["restart"])

    def wait_reverted(self, recipe: Recipe, timeout_s: float = 5.0) -> bool:
        """Poll until the fault is gone (a restarted service has its process back)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_injected(recipe):
                return True
            time.sleep(0.05)
        return not self.is_injected(recipe)

    def revert_delay(self, spec: FaultSpec, ctx: FaultContext) -> float | None:
        """Without a duration, a restart-recovered service is restarted after its delay."""
        assert isinstance(spec, ProcessFaultSpec)
        service = self._service(spec, ctx)
        if spec.action != "freeze" and service.recovery == "restart" and service.restart:
            return service.restart.delay
        return None

    def self_heals(self, spec: FaultSpec, ctx: FaultContext) -> bool:
        assert isinstance(spec, ProcessFaultSpec)
        if spec.action == "freeze":
            return False
        return self._service(spec, ctx).recovery != "restart"

    def undo_hint(self, recipe: Recipe) -> str:
        if recipe.get("host"):
            return process_remote.undo_hint(recipe)
        if recipe["action"] == "freeze":
            pids = " ".join(str(p["pid"]) for p in recipe["processes"])
            return f"kill -CONT {pids}"
        if recipe.get("restart"):
            return f"cd {recipe['restart']['cwd']} && {' '.join(recipe['restart']['command'])}"
        return f"restart service {recipe['service']} by hand"
