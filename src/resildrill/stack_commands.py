"""Stack kind ``commands``: ``target up|down|status`` for a system we did not write.

A target file declares how its staging system starts and stops, as argv lists (never a
shell line), and resildrill runs them::

    stack:
      kind: commands
      start: [java, -jar, lis.jar, --port, "9000"]   # started detached, in its own session
      stop: [./lisctl, stop]                          # optional: else SIGTERM, then SIGKILL
      ready_timeout: 30s                              # until every probe of the target passes

``up`` starts ``start`` from the target's folder (unless the probes already pass: then it
is left as it is), records its pid with its start time, and waits until every probe of the
target passes. ``down`` runs ``stop`` or signals the recorded process group (start time
checked, so a reused pid is never hit), then the processes the target's services name by
their exact command line (``process.match``: a drill's restart may have started them).
Their output goes to ``stack.log`` in the target's home (its ``run_dir``, else the state
folder's ``targets/<name>/``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from resildrill.drill.loader import LoadedTarget, load_target
from resildrill.drill.model import Duration, Frozen
from resildrill.errors import InvalidInput, ToolFailed
from resildrill.faults.embedded_proxy import proxy_home
from resildrill.faults.process import find_processes, is_same_process, proc_start_time
from resildrill.observe.probes import Probe
from resildrill.stacks import ServiceStatus, StackStatus

PIDFILE = "stack.pid"
LOG = "stack.log"


class CommandsStack(Frozen):
    """``stack:`` of kind ``commands``."""

    kind: str = "commands"
    start: list[str] = Field(min_length=1, description="argv that starts the system")
    stop: list[str] | None = Field(default=None, description="argv that stops it")
    ready_timeout: Duration = 30.0


def _load(target: LoadedTarget | str | Path) -> tuple[LoadedTarget, CommandsStack, Path]:
    loaded = target if isinstance(target, LoadedTarget) else load_target(target)
    try:
        stack = CommandsStack.model_validate(loaded.spec.stack or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{loaded.path}: stack.{where}: {first['msg']}") from None
    home = proxy_home(loaded.spec, loaded.path.parent)
    return loaded, stack, home


def _probes_pass(loaded: LoadedTarget) -> list[tuple[str, bool]]:
    return [(p.name, Probe(p).check().ok) for p in loaded.spec.probes]


def _recorded(home: Path) -> tuple[int, int] | None:
    try:
        info = json.loads((home / PIDFILE).read_text())
        return int(info["pid"]), int(info["start_time"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(home: Path) -> int | None:
    rec = _recorded(home)
    return rec[0] if rec is not None and is_same_process(*rec) else None


def status(target: LoadedTarget | str | Path, *, timeout_s: float = 0.5) -> StackStatus:
    """The started process (if any) and each probe's health."""
    loaded, _stack, home = _load(target)
    pid = _alive(home)
    services = [
        ServiceStatus(
            name=name,
            pid=pid,
            state="running" if pid is not None else "unknown",
            healthy=ok,
        )
        for name, ok in _probes_pass(loaded)
    ]
    return StackStatus(loaded.spec.name, home, services)


def up(target: LoadedTarget | str | Path, *, timeout_s: float = 60.0) -> StackStatus:
    """Start the system unless its probes already pass; wait until they all do."""
    loaded, stack, home = _load(target)
    if all(ok for _, ok in _probes_pass(loaded)):
        current = status(loaded)
        current.started = False
        return current
    home.mkdir(parents=True, exist_ok=True)
    with open(home / LOG, "ab") as log:
        proc = subprocess.Popen(  # argv from the target file, as documented; no shell
            stack.start,
            cwd=loaded.path.parent,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    start = proc_start_time(proc.pid)
    (home / PIDFILE).write_text(json.dumps({"pid": proc.pid, "start_time": start}))
    deadline = time.monotonic() + min(timeout_s, stack.ready_timeout)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ToolFailed(
                f"{loaded.path}: stack.start exited with {proc.returncode}; see {home / LOG}"
            )
        if all(ok for _, ok in _probes_pass(loaded)):
            current = status(loaded)
            current.started = True
            return current
        time.sleep(0.2)
    failing = [name for name, ok in _probes_pass(loaded) if not ok]
    raise ToolFailed(
        f"{loaded.path}: started, but probes {', '.join(failing)} did not pass within "
        f"{stack.ready_timeout:g}s; see {home / LOG} ('resildrill target down' stops it)"
    )


def down(target: LoadedTarget | str | Path) -> list[str]:
    """Stop the system (its stop command, or the recorded process group); idempotent."""
    loaded, stack, home = _load(target)
    stopped: list[str] = []
    if stack.stop is not None:
        with open(home / LOG, "ab") if home.exists() else open(os.devnull, "wb") as log:
            done = subprocess.run(  # argv from the target file; bounded
                stack.stop, cwd=loaded.path.parent, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, timeout=60, check=False,
            )  # fmt: skip
        if done.returncode == 0:
            stopped.append("stop command")
    rec = _recorded(home)
    if rec is not None and is_same_process(*rec):
        _signal_group(*rec)
        stopped.append(f"pid {rec[0]}")
    (home / PIDFILE).unlink(missing_ok=True)
    # A drill's restart command may have started the system again since `up`: the services
    # the target names by their exact command line are its processes too.
    for name, service in loaded.spec.services.items():
        if service.process is None or service.process.match is None:
            continue
        for pid in find_processes(service.process, loaded.path.parent):
            start = proc_start_time(pid)
            if start is not None:
                _signal_group(pid, start, group=False)
                stopped.append(f"{name} pid {pid}")
    return stopped


def _signal_group(pid: int, start: int, *, group: bool = True) -> None:
    """SIGTERM the started session (or one process), SIGKILL after 5 s; identity checked
    before each signal, so a reused pid is never hit."""
    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        if not is_same_process(pid, start):
            return
        try:
            os.killpg(pid, sig) if group else os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and is_same_process(pid, start):
            time.sleep(0.05)


__all__: list[Any] = ["CommandsStack", "down", "status", "up"]
