"""resildrill's guard: the program the runner starts on a drilled host, over SSH.

It applies each fault the runner asks for, journals it on the host (fsynced, with the way to
undo it) *before* acting, and reverts everything it applied **by itself** when

* no message (heartbeat or request) has come from the runner for ``--heartbeat-timeout``,
* a fault reaches its maximum lifetime, or
* its channel ends without the runner's ``bye`` (the runner was killed, SSH was cut).

It listens on no port: instructions come only from the SSH channel that started it. That
channel is served by a small relay process; the guard itself runs in its own session and
process group, so it outlives the SSH session and sees the end of the channel as EOF.
``rollback`` (run by ``resildrill rollback`` and the runner's watchdog over a fresh SSH
connection) undoes what any journal on this host still shows applied; every undo is
idempotent and checked against the live system (/proc, the filesystem).

This file is copied to the host alone and checked by hash: Python 3.8 or newer, standard
library only, no import of resildrill. Protocol: one JSON object per line each way; a request
carries an ``id`` and ``op``, its answer the same ``id`` and ``ok``.

    python3 guard.py serve --state DIR --run RUN_ID [--heartbeat-timeout 5]
    python3 guard.py rollback --state DIR [--run RUN_ID] [--fault ID]
    python3 guard.py select --locator JSON [--scope process|tree]
    python3 guard.py inspect --state DIR --run RUN_ID
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROTOCOL = 1
_TICK_S = 0.05
FILL_PREFIX = ".resildrill-fill-"

# --- /proc ---------------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    return raw[raw.rfind(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    fields = _stat(pid)
    return None if fields is None else int(fields[19])


def state(pid: int) -> str | None:
    """The one-letter state of a process (R, S, T, Z...), or None if it is gone."""
    fields = _stat(pid)
    return None if fields is None else fields[0]


def cmdline(pid: int) -> str | None:
    """The command line of a process, arguments joined by single spaces."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return " ".join(p.decode(errors="replace") for p in raw.split(b"\0") if p)


def same_process(pid: int, start: int) -> bool:
    """Whether ``pid`` still names the process that started at ``start`` (and is alive)."""
    s = state(pid)
    return s is not None and s not in ("Z", "X") and start_time(pid) == start


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _ancestors(pid: int) -> set[int]:
    """This guard's own chain, never a fault's target: itself, its relay and shell, and the
    sshd processes that carry its channel, up to the SSH server's listener (and PID 1).
    What started that listener (systemd, a supervisor) is not ours and may be acted on: a
    frozen supervisor does not stop the sshd it started."""
    seen: set[int] = {1}
    parent: int | None = pid
    in_sshd = False
    while parent is not None and parent > 1 and parent not in seen:
        is_sshd = _comm(parent) == "sshd"
        if in_sshd and not is_sshd:
            break  # above the SSH server: not part of our channel
        in_sshd = in_sshd or is_sshd
        seen.add(parent)
        fields = _stat(parent)
        parent = None if fields is None else int(fields[1])
    return seen


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[0] not in ("Z", "X"):
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, parents before children (one scan of /proc)."""
    children = _children_map()
    found: list[int] = []
    queue = list(children.get(pid, []))
    while queue:
        child = queue.pop(0)
        if child not in found:
            found.append(child)
            queue.extend(children.get(child, []))
    return found


def unit_pids(unit: str) -> list[int]:
    """Processes of a systemd unit: its cgroup (``.../<unit>``), as systemd itself places them."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            groups = (entry / "cgroup").read_text().splitlines()
        except OSError:
            continue
        if any(line.rsplit("/", 1)[-1] == unit for line in groups):
            pids.append(int(entry.name))
    # the unit's main process first (the oldest), as MainPID would name it
    return sorted(pids, key=lambda p: start_time(p) or 0)


def _read_pidfile(path: str) -> tuple[int | None, str | None]:
    try:
        text, written = Path(path).read_text(), Path(path).stat().st_mtime
    except OSError as exc:
        return None, f"pidfile {path}: {exc.strerror}"
    fields = text.split()
    if not fields or not fields[0].isdigit():
        return None, f"pidfile {path}: no pid in it"
    pid = int(fields[0])
    if state(pid) in (None, "Z", "X"):
        return None, f"pidfile {path}: pid {pid} is not running"
    if len(fields) > 1 and fields[1].isdigit():
        if start_time(pid) != int(fields[1]):
            return None, f"pidfile {path}: pid {pid} is now another process (stale pidfile)"
        return pid, None
    try:
        btime = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        started = btime + (start_time(pid) or 0) / os.sysconf("SC_CLK_TCK")
        if started > written + 1.0:
            return None, f"pidfile {path}: pid {pid} started after the pidfile was written"
    except (OSError, ValueError, StopIteration):
        pass
    return pid, None


def select_processes(locator: dict[str, Any], scope: str = "process") -> dict[str, Any]:
    """The processes a locator finds (with start times), never this guard or its ancestors."""
    own = _ancestors(os.getpid())
    problem = None
    pids: list[int] = []
    if locator.get("pid") is not None:
        pids = [int(locator["pid"])]
    elif locator.get("pidfile"):
        pid, problem = _read_pidfile(str(locator["pidfile"]))
        pids = [] if pid is None else [pid]
    elif locator.get("match") is not None:
        pids = [
            int(e.name)
            for e in Path("/proc").iterdir()
            if e.name.isdigit() and cmdline(int(e.name)) == locator["match"]
        ]
    elif locator.get("unit"):
        pids = unit_pids(str(locator["unit"]))
    found = []
    for pid in pids:
        st = start_time(pid)
        if pid in own or st is None or state(pid) in ("Z", "X"):
            continue
        fields = _stat(pid)
        ppid = int(fields[1]) if fields else None
        found.append({"pid": pid, "start_time": st, "cmdline": cmdline(pid), "ppid": ppid})
        if scope == "tree":
            for child in descendants(pid):
                cst = start_time(child)
                if cst is not None and child not in own:
                    found.append(
                        {"pid": child, "start_time": cst, "cmdline": cmdline(child),
                         "descendant_of": pid}
                    )  # fmt: skip
    return {"processes": found, "problem": problem}


# --- what a fault does and how it is undone --------------------------------------------------


def _die_with_parent() -> None:
    """In a hog child: the kernel kills it when the guard ends, however the guard ends."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    os.setpgrp()


_CPU_HOG = "while True:\n    pass\n"
_MEM_HOG = (
    "import sys, time\n"
    "n = int(sys.argv[1]) * 1048576\n"
    "b = bytearray(n)\n"
    "for i in range(0, n, 4096):\n"
    "    b[i] = 1\n"
    "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
    "while True:\n"
    "    time.sleep(3600)\n"
)


def _spawn(code: str, *args: str, wait_ready: bool = False) -> dict[str, Any]:
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if wait_ready else subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
        close_fds=True,
    )
    if wait_ready and proc.stdout is not None:
        line = proc.stdout.readline()
        if line.strip() != b"ready":
            proc.kill()
            proc.wait()
            raise RuntimeError("memory hog could not allocate (out of memory?)")
    st = start_time(proc.pid)
    return {"pid": proc.pid, "start_time": st if st is not None else -1}


def _signal_each(processes: list[dict[str, Any]], sig: int) -> list[int]:
    hit = []
    for p in processes:
        if same_process(int(p["pid"]), int(p["start_time"])):
            try:
                os.kill(int(p["pid"]), sig)
                hit.append(int(p["pid"]))
            except OSError:  # gone meanwhile, or not ours to signal: never fatal to the guard
                pass
    return hit


def disk_plan(path: str, fill_to_pct: float, floor_mib: float) -> dict[str, Any]:
    """How many bytes to add under ``path`` to reach ``fill_to_pct`` used, never leaving less
    than ``floor_mib`` free."""
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    used = total - st.f_bfree * st.f_frsize
    wanted = int(total * fill_to_pct / 100.0) - used
    allowed = free - int(floor_mib * 1048576)
    size = max(0, min(wanted, allowed))
    return {"total": total, "free": free, "used": used, "bytes": size,
            "capped_by_floor": wanted > allowed}  # fmt: skip


def _fill(path: str, size: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if size > 0:
            try:
                os.posix_fallocate(fd, 0, size)
            except OSError:
                chunk = b"\0" * 1048576
                left = size
                while left > 0:
                    left -= os.write(fd, chunk[: min(left, len(chunk))])
        os.fsync(fd)
    finally:
        os.close(fd)


def apply_fault(
    req: dict[str, Any], run: str, spawned: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Act; returns the undo (what ``undo`` needs) and facts for the runner."""
    action = req["action"]
    if action == "signal":
        sig = {"KILL": signal.SIGKILL, "TERM": signal.SIGTERM, "STOP": signal.SIGSTOP}[
            req["signal"]
        ]
        processes = req["processes"]
        located = [p for p in processes if "descendant_of" not in p]
        for p in located:
            if not same_process(int(p["pid"]), int(p["start_time"])):
                raise RuntimeError(f"pid {p['pid']} is no longer the recorded process")
        hit = _signal_each(processes, sig)  # parents first: no new child escapes a freeze
        undo = {"kind": "cont", "processes": processes} if req["signal"] == "STOP" else None
        return {"undo": undo, "signalled": hit}
    if action == "throttle":
        # the duty cycle itself is run by the guard's loop (Guard.cycle), here on the host
        return {"undo": {"kind": "cont", "processes": req["processes"]}}
    if action == "hold":
        # a server shut down by heat stays down: its supervisor is frozen first (a stopped
        # parent restarts nothing), then the server is signalled; undone by resuming it
        parents = req.get("parents") or []
        frozen = _signal_each(parents, signal.SIGSTOP)
        sig = signal.SIGKILL if req["signal"] == "KILL" else signal.SIGTERM
        hit = _signal_each(req["processes"], sig)
        _signal_each(
            req["processes"], signal.SIGCONT
        )  # a stopped process acts on TERM once continued
        return {"undo": {"kind": "cont", "processes": parents}, "signalled": hit, "frozen": frozen}
    hogs = spawned if spawned is not None else []
    if action == "cpu":
        for _ in range(int(req["cores"])):
            hogs.append(_spawn(_CPU_HOG))
        return {"undo": {"kind": "kill", "processes": hogs}, "pids": [h["pid"] for h in hogs]}
    if action == "memory":
        if req.get("percent") is not None:
            total_kib = next(
                int(line.split()[1])
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal:")
            )
            req = {**req, "mib": int(total_kib / 1024 * float(req["percent"]) / 100)}
        mib = int(req["mib"])
        hogs.append(_spawn(_MEM_HOG, str(mib), wait_ready=True))
        return {"undo": {"kind": "kill", "processes": hogs}, "pids": [h["pid"] for h in hogs],
                "mib": mib}  # fmt: skip
    if action == "disk":
        directory = str(req["path"])
        plan = disk_plan(directory, float(req["fill_to_pct"]), float(req["floor_mib"]))
        target = os.path.join(directory, f"{FILL_PREFIX}{run}-{req['fault']}")
        _fill(target, plan["bytes"])
        return {"undo": {"kind": "unlink", "path": target}, **plan, "file": target}
    raise RuntimeError(f"unknown action {action!r}")


def in_place(undo: dict[str, Any] | None) -> bool:
    """Whether a fault is still in effect, judged from the live system."""
    if not undo:
        return False
    if undo["kind"] == "cont":
        return any(
            same_process(int(p["pid"]), int(p["start_time"])) and state(int(p["pid"])) == "T"
            for p in undo["processes"]
        )
    if undo["kind"] == "kill":
        return any(same_process(int(p["pid"]), int(p["start_time"])) for p in undo["processes"])
    if undo["kind"] == "unlink":
        return os.path.exists(undo["path"])
    return False


def undo_fault(undo: dict[str, Any] | None) -> str:
    """Undo from the journalled recipe alone; idempotent."""
    if not undo:
        return "nothing to undo"
    if undo["kind"] == "cont":
        hit = _signal_each(undo["processes"], signal.SIGCONT)
        return f"SIGCONT to {', '.join(map(str, hit))}" if hit else "nothing frozen"
    if undo["kind"] == "kill":
        hit = _signal_each(undo["processes"], signal.SIGKILL)
        for pid in hit:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)  # our own child: reap it, so it is gone, not a zombie
        deadline = time.monotonic() + 2.0  # someone else's child (rollback): let it exit
        while in_place(undo) and time.monotonic() < deadline:
            time.sleep(0.01)
        return f"stopped {', '.join(map(str, hit))}" if hit else "nothing running"
    if undo["kind"] == "unlink":
        if not os.path.basename(undo["path"]).startswith(FILL_PREFIX):
            return f"refused: {undo['path']} is not a fill file of ours"
        try:
            size = os.stat(undo["path"]).st_size
            os.unlink(undo["path"])
            return f"removed {undo['path']} ({size // 1048576} MiB)"
        except FileNotFoundError:
            return "nothing to remove"
    return "nothing to undo"


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _sudo_ids() -> tuple[int, int] | None:
    """(uid, gid) of the user who ran the guard through sudo, or None without sudo."""
    if os.geteuid() != 0 or "SUDO_UID" not in os.environ:
        return None
    return int(os.environ["SUDO_UID"]), int(os.environ.get("SUDO_GID", os.environ["SUDO_UID"]))


def root_owned_problem(path: Path) -> str | None:
    """Under sudo, the guard's state folder and every folder above it must be root's and
    writable by nobody else: otherwise the SSH user could swap in a symlink and make root
    write or delete where it chooses."""
    if not path.is_absolute():
        return f"state_dir {path} must be an absolute path under sudo (a root-owned folder)"
    for part in [path, *path.parents]:
        try:
            st = part.stat()
        except FileNotFoundError:
            continue
        if st.st_uid != 0 or st.st_mode & 0o022:
            return f"state_dir {path}: {part} is not root-owned and closed to others"
    return None


def _drop_to(ids: tuple[int, int]) -> None:
    """In the child, before exec: become the SSH user (Popen's user= needs Python 3.9)."""
    os.setgroups([])
    os.setgid(ids[1])
    os.setuid(ids[0])


def start_detached(argv: list[str], cwd: str | None, log: str | None) -> int:
    """A restart command, in its own session (it is the service: no death signal). Under
    sudo it runs as the SSH user, not root: a command needing root says so itself (its own
    sudoers line), so the guard's rule never grants more than signals."""
    ids = _sudo_ids()
    out: Any = subprocess.DEVNULL
    if log:
        fd = os.open(
            os.path.expanduser(log), os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o600
        )
        out = os.fdopen(fd, "ab")
    try:
        proc = subprocess.Popen(
            argv, cwd=os.path.expanduser(cwd) if cwd else None, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
            preexec_fn=(lambda: _drop_to(ids)) if ids else None,
        )  # fmt: skip
    finally:
        if log:
            out.close()
    return proc.pid


# --- the journal on the host -------------------------------------------------------------------


class HostJournal:
    """Append-only JSONL, fsynced per record: what was applied here and how to undo it."""

    def __init__(self, state_dir: Path, run: str) -> None:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = state_dir / f"{run}.jsonl"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o600)

    def append(self, record_type: str, **fields: Any) -> None:
        rec = {"t": record_type, "mono": time.monotonic(), "wall": time.time(), **fields}
        os.write(self._fd, (json.dumps(rec, sort_keys=True) + "\n").encode())
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


def read_records(path: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    try:
        text = path.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a torn last line after a crash
    return out


def outstanding(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Faults applied (or being applied) and not yet reverted, by fault id."""
    open_: dict[str, dict[str, Any]] = {}
    for rec in records:
        if rec["t"] in ("applying", "applied") and rec.get("undo", True) is not None:
            open_[rec["fault"]] = rec
        elif rec["t"] == "reverted":
            open_.pop(rec["fault"], None)
    return open_


# --- serve: the guard and its relay --------------------------------------------------------------


class Guard:
    """The guard proper: requests in, answers out, and the dead man's switch."""

    def __init__(self, state_dir: Path, run: str, heartbeat_timeout: float) -> None:
        self.run = run
        self.journal = HostJournal(state_dir, run)
        self.timeout = heartbeat_timeout
        self.applied: dict[str, dict[str, Any]] = {}  # fault -> {undo, expires}
        self.cycles: dict[str, dict[str, Any]] = {}  # fault -> a throttle's duty cycle
        self.last_heard = time.monotonic()
        self.said_bye = False
        self.out_fd = -1

    def run_loop(self, in_fd: int, out_fd: int) -> None:
        """Serve until the runner leaves; whatever ends the loop (an error included, or
        SIGTERM from a shutdown or a session clean-up), everything applied is reverted."""
        self.out_fd = out_fd
        self.terminated = False

        def on_term(signum: int, frame: Any) -> None:
            self.terminated = True

        signal.signal(signal.SIGTERM, on_term)
        why = "the guard failed"
        try:
            self.journal.append("guard_started", pid=os.getpid(), timeout=self.timeout)
            why = self._serve(in_fd)
        finally:
            self.revert_all(f"the guard: {why}")
            with contextlib.suppress(OSError):
                self.journal.append("guard_ended", why=why)

    def _serve(self, in_fd: int) -> str:
        buf = b""
        why = ""
        while not why:
            if self.terminated:
                return "terminated (SIGTERM)"
            ready, _, _ = select.select([in_fd], [], [], _TICK_S)
            now = time.monotonic()
            if ready:
                data = os.read(in_fd, 65536)
                if not data:
                    return "bye" if self.said_bye else "the connection ended without a hand-off"
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self.last_heard = time.monotonic()
                    if line.strip() and not self._handle(line):
                        why = "the runner can no longer be answered"
            if now - self.last_heard > self.timeout:
                why = f"no heartbeat from the runner for {self.timeout:g} s"
            for fault, entry in list(self.applied.items()):
                if entry["expires"] is not None and now >= entry["expires"]:
                    self._revert(fault, "the guard: fault reached its maximum lifetime")
            self._cycle(time.monotonic())
        return why

    def _undo_before(
        self, req: dict[str, Any], fault: str, spawned: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """How to undo ``req`` whatever part of it gets done (None: nothing to undo)."""
        action = req["action"]
        if action == "disk":
            target = os.path.join(str(req["path"]), f"{FILL_PREFIX}{self.run}-{fault}")
            return {"kind": "unlink", "path": target}
        if action == "signal":
            return (
                {"kind": "cont", "processes": req["processes"]} if req["signal"] == "STOP" else None
            )
        if action in ("throttle", "hold"):
            key = "processes" if action == "throttle" else "parents"
            return {"kind": "cont", "processes": req.get(key) or []}
        if action in ("cpu", "memory"):
            return {"kind": "kill", "processes": spawned}
        return None

    def _cycle(self, now: float) -> None:
        """Throttles: stopped for ``stop_fraction`` of every ``period_s``, on the host's clock."""
        for cycle in self.cycles.values():
            phase = ((now - cycle["since"]) % cycle["period_s"]) / cycle["period_s"]
            stop = phase < cycle["stop_fraction"]
            if stop != cycle["stopped"]:
                _signal_each(cycle["processes"], signal.SIGSTOP if stop else signal.SIGCONT)
                cycle["stopped"] = stop

    def revert_all(self, by: str) -> None:
        for fault in reversed(list(self.applied)):
            try:
                self._revert(fault, by)
            except Exception as exc:  # one failure must not keep the others in place
                print(f"revert of {fault} failed: {exc!r}", file=sys.stderr)

    def _revert(self, fault: str, by: str) -> dict[str, Any]:
        self.cycles.pop(fault, None)  # a throttle stops cycling before it is continued
        entry = self.applied.pop(fault, None)
        if entry is None:
            return {"detail": "nothing applied", "by": by}
        try:
            detail = undo_fault(entry["undo"])
        except OSError as exc:
            detail = f"undo failed: {exc}"
        still = in_place(entry["undo"])
        with contextlib.suppress(OSError):  # a full disk must not stop the undo itself
            self.journal.append(
                "revert_failed" if still else "reverted", fault=fault, by=by, detail=detail
            )
        if still:
            self.applied[fault] = entry
        return {"detail": detail, "by": by, "in_place": still, "at": time.monotonic()}

    def _send(self, msg: dict[str, Any]) -> bool:
        data = (json.dumps(msg) + "\n").encode()
        try:
            while data:
                data = data[os.write(self.out_fd, data) :]
        except OSError:
            return False
        return True

    def _handle(self, line: bytes) -> bool:
        rid = None
        try:
            req = json.loads(line)
            rid = req.get("id")
            answer = self._answer(req)
            answer.update(id=rid, ok=True)
        except Exception as exc:  # every failure goes back to the runner, never kills the guard
            answer = {"id": rid, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return self._send(answer)

    def _answer(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req["op"]
        if op in ("hello", "beat"):
            return {"mono": time.monotonic(), "pid": os.getpid(), "protocol": PROTOCOL,
                    "applied": sorted(self.applied)}  # fmt: skip
        if op == "select":
            return select_processes(req["locator"], req.get("scope", "process"))
        if op == "apply":
            fault = str(req["fault"])
            if fault in self.applied:
                raise RuntimeError(f"fault {fault} is already applied")
            lifetime = req.get("lifetime_s")
            expires = None if lifetime is None else time.monotonic() + float(lifetime)
            spawned: list[dict[str, Any]] = []  # hogs, recorded as each one starts
            undo = self._undo_before(req, fault, spawned)
            if undo is not None:
                # tracked before acting: a partial apply, or a journal that cannot be
                # written after it, is still undone on heartbeat loss, EOF or bye
                self.journal.append("applying", fault=fault, undo=undo)
                self.applied[fault] = {"undo": undo, "expires": expires}
            try:
                result = apply_fault(req, self.run, spawned)
            except Exception:
                if fault in self.applied:
                    self._revert(fault, "the guard: the apply failed part-way")
                raise
            applied_at = time.monotonic()
            if result["undo"] is not None:
                self.applied[fault] = {"undo": result["undo"], "expires": expires}
            else:
                self.applied.pop(fault, None)
            with contextlib.suppress(OSError):  # already tracked; a full disk may refuse this
                self.journal.append(
                    "applied", fault=fault, undo=result["undo"], action=req["action"]
                )
            if req["action"] == "throttle":
                self.cycles[fault] = {
                    "processes": req["processes"],
                    "period_s": float(req["period_s"]),
                    "stop_fraction": float(req["stop_fraction"]),
                    "since": applied_at,
                    "stopped": False,
                }
                self._cycle(applied_at)  # starts with a stop: the throttle acts at once
            return {**result, "at": applied_at}
        if op == "revert":
            return self._revert(str(req["fault"]), "the runner")
        if op == "status":
            entry = self.applied.get(str(req["fault"]))
            return {"applied": entry is not None,
                    "in_place": in_place(entry["undo"]) if entry else False}  # fmt: skip
        if op == "restart":
            pid = start_detached(list(req["argv"]), req.get("cwd"), req.get("log"))
            return {"pid": pid, "at": time.monotonic()}
        if op == "bye":
            self.said_bye = True
            leftover = sorted(self.applied)
            self.revert_all("the guard: hand-off (runner finished)")
            return {"reverted": leftover}
        raise RuntimeError(f"unknown op {op!r}")


def _relay(in_fd: int, to_guard: int, from_guard: int, out_fd: int) -> None:
    """Copy the SSH channel to the guard and back until the guard has finished."""
    watching = [in_fd, from_guard]
    while watching:
        ready, _, _ = select.select(watching, [], [])
        for fd in ready:
            data = os.read(fd, 65536)
            if fd == in_fd:
                if not data:
                    os.close(to_guard)  # the guard sees EOF: connection over
                    watching.remove(in_fd)
                    continue
                os.write(to_guard, data)
            else:
                if not data:
                    return
                try:
                    os.write(out_fd, data)
                except OSError:
                    return


def serve(state_dir: Path, run: str, heartbeat_timeout: float) -> int:
    if _sudo_ids() is not None and (problem := root_owned_problem(state_dir)):
        print(f"guard refused: {problem}", file=sys.stderr)
        return 2
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the guard: own session, stdio detached, outlives the SSH session
        os.close(to_w)
        os.close(from_r)
        os.setsid()
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDWR)
        log = os.open(
            state_dir / f"{run}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o600
        )
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(log, 2)
        pid_fd = os.open(
            state_dir / f"{run}.pid", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o600
        )
        os.write(pid_fd, f"{os.getpid()} {start_time(os.getpid())}\n".encode())
        os.close(pid_fd)
        code = 0
        try:
            Guard(state_dir, run, heartbeat_timeout).run_loop(to_r, from_w)
        except BaseException as exc:
            print(f"guard failed: {exc!r}", file=sys.stderr)
            code = 1
        os._exit(code)
    os.close(to_r)
    os.close(from_w)
    _relay(0, to_w, from_r, 1)
    return 0


# --- rollback and inspection over a one-shot SSH command -------------------------------------


def rollback(state_dir: Path, run: str | None, fault: str | None) -> dict[str, Any]:
    """Undo what any journal here still shows applied (of one run / fault if given)."""
    if _sudo_ids() is not None and (problem := root_owned_problem(state_dir)):
        raise SystemExit(f"guard refused: {problem}")
    paths = [state_dir / f"{run}.jsonl"] if run else sorted(state_dir.glob("*.jsonl"))
    reverted, failed, already = [], [], []
    for path in paths:
        records = read_records(path)
        done_by = {r["fault"]: r.get("by") for r in records if r["t"] == "reverted"}
        left = outstanding(records)
        if fault is not None:
            left = {k: v for k, v in left.items() if k == fault}
            if fault in done_by and fault not in left:
                already.append({"run": path.stem, "fault": fault, "by": done_by[fault]})
        if not left:
            continue
        journal = HostJournal(state_dir, path.stem)
        for fid, rec in left.items():
            detail = undo_fault(rec.get("undo"))
            if in_place(rec.get("undo")):
                failed.append({"run": path.stem, "fault": fid, "detail": detail})
                journal.append("revert_failed", fault=fid, by="rollback", detail=detail)
            else:
                reverted.append({"run": path.stem, "fault": fid, "detail": detail})
                journal.append("reverted", fault=fid, by="rollback", detail=detail)
        journal.close()
    return {"reverted": reverted, "failed": failed, "already": already}


def inspect(state_dir: Path, run: str) -> dict[str, Any]:
    records = read_records(state_dir / f"{run}.jsonl")
    left = outstanding(records)
    return {
        "records": records,
        "outstanding": {k: in_place(v.get("undo")) for k, v in left.items()},
        "now": time.monotonic(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="guard.py")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--state", required=True)
    s.add_argument("--run", required=True)
    s.add_argument("--heartbeat-timeout", type=float, default=5.0)
    r = sub.add_parser("rollback")
    r.add_argument("--state", required=True)
    r.add_argument("--run")
    r.add_argument("--fault")
    q = sub.add_parser("select")
    q.add_argument("--locator", required=True)
    q.add_argument("--scope", default="process")
    i = sub.add_parser("inspect")
    i.add_argument("--state", required=True)
    i.add_argument("--run", required=True)
    st = sub.add_parser("start")
    st.add_argument("--argv", required=True)
    st.add_argument("--cwd", default="")
    st.add_argument("--log", default="")
    d = sub.add_parser("disk-plan")
    d.add_argument("--path", required=True)
    d.add_argument("--fill-to-pct", type=float, required=True)
    d.add_argument("--floor-mib", type=float, required=True)
    args = parser.parse_args(argv)
    state_dir = Path(os.path.expanduser(getattr(args, "state", "") or "."))
    if args.cmd == "serve":
        return serve(state_dir, args.run, args.heartbeat_timeout)
    if args.cmd == "rollback":
        out = rollback(state_dir, args.run, args.fault)
    elif args.cmd == "select":
        out = select_processes(json.loads(args.locator), args.scope)
    elif args.cmd == "inspect":
        out = inspect(state_dir, args.run)
    elif args.cmd == "start":
        out = {"pid": start_detached(json.loads(args.argv), args.cwd or None, args.log or None)}
    else:
        out = disk_plan(args.path, args.fill_to_pct, args.floor_mib)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
