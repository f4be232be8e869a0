"""Process plumbing shared by the ward EHR's components: pidfiles, logging, serving.

A pidfile holds ``PID STARTTIME`` (start time in clock ticks from ``/proc/PID/stat``): the
first word is what the ``process`` fault reads, the second lets ``target down`` check that a
pid still names the process that wrote it before signalling it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

__all__ = [
    "live_pid",
    "parse_address",
    "read_pidfile",
    "remove_pidfile",
    "serve",
    "setup_logging",
    "write_pidfile",
]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    return raw[raw.rfind(")") + 2 :].split()


def proc_start_time(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat).

    The same reading as :func:`resildrill.faults.process.proc_start_time`, repeated here so the
    EHR's processes do not import the drill models (pydantic) and restart faster.
    """
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])


def proc_state(pid: int) -> str | None:
    """The one-letter state of a process (R, S, T, Z...), or None if it is gone."""
    fields = _stat_fields(pid)
    return None if fields is None else fields[0]


def is_same_process(pid: int, start_time: int) -> bool:
    """Whether ``pid`` is alive (not a zombie) and started at ``start_time``."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X") and int(fields[19]) == start_time


def parse_address(value: str) -> tuple[str, int]:
    """``host:port`` -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"address {value!r} is not host:port")
    return host, int(port)


def write_pidfile(path: str | Path, pid: int | None = None) -> None:
    """Write ``PID STARTTIME`` atomically (a reader never sees a half-written file)."""
    pid = os.getpid() if pid is None else pid
    start = proc_start_time(pid)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{pid} {start if start is not None else ''}\n".rstrip() + "\n")
    os.replace(tmp, p)


def read_pidfile(path: str | Path) -> tuple[int, int | None] | None:
    """(pid, start time or None) from a pidfile, or None if absent or unreadable."""
    try:
        words = Path(path).read_text().split()
        pid = int(words[0])
        start = int(words[1]) if len(words) > 1 else None
    except (OSError, ValueError, IndexError):
        return None
    return pid, start


def live_pid(path: str | Path) -> int | None:
    """The pid in a pidfile if that very process (same start time) is still alive."""
    entry = read_pidfile(path)
    if entry is None:
        return None
    pid, start = entry
    if start is None:
        return None  # without a start time the pid cannot be trusted: never signal it
    return pid if is_same_process(pid, start) else None


def remove_pidfile(path: str | Path, pid: int | None = None) -> None:
    """Remove a pidfile, only if it still names ``pid`` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    entry = read_pidfile(path)
    if entry is not None and entry[0] == pid:
        Path(path).unlink(missing_ok=True)


def setup_logging(name: str) -> logging.Logger:
    """Log lines with a UTC time and the component's name to stderr (the supervisor's log)."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format=f"%(asctime)s {name}[%(process)d] %(levelname)s %(message)s",
    )
    logging.Formatter.converter = time.gmtime
    return logging.getLogger(name)


def serve(
    app: web.Application,
    listen: str,
    pidfile: str | None,
    on_started: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve ``app`` on ``listen`` until SIGTERM/SIGINT, keeping ``pidfile`` current."""

    async def main() -> None:
        host, port = parse_address(listen)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True, backlog=256)
        await site.start()
        if pidfile:
            write_pidfile(pidfile)
        if on_started is not None:
            await on_started()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
            if pidfile:
                remove_pidfile(pidfile)

    asyncio.run(main())
