"""The parent-side LoadDriver: starts Locust's master and workers, receives 100 ms buckets.

Owns the Locust processes of a run and the runner's end of the timeline stream. It never
imports locust or gevent (STYLE.md P11): Locust runs as real processes,
``python -m locust --headless --master --master-bind-host 127.0.0.1`` and N
``--worker --master-host 127.0.0.1``, each in its own session (a Ctrl-C in the runner's
terminal reaches the runner, which stops load in order) and each dying with the runner:
``PR_SET_PDEATHSIG(SIGKILL)`` is set before exec, and the plugin in every Locust process
also exits when its parent pid changes or its stdin pipe closes.

Workers send their buckets to the master over Locust's own channel; the master writes
them as JSON lines to a pipe this driver reads on a thread (``stream.py`` has the format).
``poll()`` hands the runner what arrived since the last call, with bucket indices relative
to ``monotonic_t0``; ``apply_buckets`` merges them into the run's ``TimeSeries``.

Bearer tokens: the driver is the only reader of the token's source. ``bearer_token_env``
is read once, at ``start()`` (the runner's environment cannot be changed from outside
once it runs); ``bearer_token_file`` is watched on a thread (stat every 0.25 s, re-read
when it changed and every 5 s) and each new token is written to the master's stdin,
which sends it over Locust's channel to every worker, local or remote. The token is
never written to a log, the journal, the timeline or the report.

Note: ``PR_SET_PDEATHSIG`` fires when the *thread* that started a child exits, so call
``start()`` from a thread that lives as long as the load (the runner's main thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from resildrill.drill.model import LoadSpec
from resildrill.errors import ToolFailed
from resildrill.load import delivery as _delivery
from resildrill.load import integrity as _integrity
from resildrill.load import sizing
from resildrill.load.integrity import IntegrityResult
from resildrill.load.stream import FLUSH_INTERVAL_S, decode, index_of
from resildrill.observe.histogram import LatencyHistogram
from resildrill.observe.metrics import RESOLUTION_S, SourceSeries, TimeSeries

__all__ = [
    "IntegrityResult",
    "LoadBucket",
    "LoadDriver",
    "WorkflowSeries",
    "apply_buckets",
    "child_config",
    "workflow_series",
]

_LOCUSTFILES = Path(__file__).parent / "locustfiles"
_PR_SET_PDEATHSIG = 1
#: How long start() waits for Locust to import, connect its workers and start spawning.
START_TIMEOUT_S = 45.0
#: A bearer token file is re-read at least this often, whatever its stat says.
_TOKEN_CHECK_S = 5.0
#: ... and stat'ed this often: a replaced or rewritten file is picked up within this.
_TOKEN_STAT_S = 0.25
#: A sample older than the request timeout plus this slack on arrival is dropped: the
#: runner may already have judged its bucket (issue: late samples accepted up to the
#: request timeout).
_LATE_SLACK_S = 2 * FLUSH_INTERVAL_S + 0.5


@dataclass(frozen=True, slots=True)
class LoadBucket:
    """One workflow's 100 ms bucket (a delta: merge by adding) from one worker flush."""

    workflow: str
    index: int
    count: int
    failures: int
    hist: LatencyHistogram
    actions: int = 0
    actions_failed: int = 0


@dataclass
class WorkflowTotals:
    """Whole-run figures of one workflow, for report.json ``load.by_workflow``."""

    requests: int = 0
    failures: int = 0
    actions: int = 0
    failed_actions: int = 0
    hist: LatencyHistogram | None = None

    def add(self, b: LoadBucket) -> None:
        """Count one bucket delta into the totals."""
        self.requests += b.count
        self.failures += b.failures
        self.actions += b.actions
        self.failed_actions += b.actions_failed
        if self.hist is None:
            self.hist = LatencyHistogram()
        self.hist.merge(b.hist)

    def to_json(self) -> dict[str, Any]:
        p95 = self.hist.quantile(0.95) if self.hist is not None else None
        return {
            "requests": self.requests,
            "failures": self.failures,
            "actions": self.actions,
            "failed_actions": self.failed_actions,
            "p95_ms": round(p95 * 1000, 3) if p95 is not None else None,
        }


def totals_json(totals: dict[str, WorkflowTotals]) -> dict[str, Any]:
    """report.json ``load``'s ``requests``, ``failures`` and ``by_workflow`` from the
    per-workflow totals (a finished run's driver, or a crashed run's streamed buckets)."""
    return {
        "requests": sum(t.requests for t in totals.values()),
        "failures": sum(t.failures for t in totals.values()),
        "by_workflow": {wf: t.to_json() for wf, t in sorted(totals.items())},
    }


@dataclass
class WorkflowSeries(SourceSeries):
    """A workflow's requests per 100 ms bucket, plus the clinical actions started in it.

    An action is one task of a persona (one patient's observations, one drug round
    entry), failed when any of its requests failed (``users.ClinicalUser.action``); it is
    dated by its start like a request. ``actions_failed`` is what the ``failed_actions``
    halt condition counts.
    """

    actions: list[int] = field(default_factory=list)
    actions_failed: list[int] = field(default_factory=list)

    def _grow(self, n: int) -> None:
        super()._grow(n)
        if n > len(self.actions):
            extra = n - len(self.actions)
            self.actions.extend([0] * extra)
            self.actions_failed.extend([0] * extra)

    def add_actions(self, i: int, actions: int, failed: int) -> None:
        """Merge a bucket's action counts (a delta, like :meth:`add_bucket`)."""
        if i < 0:
            return
        self._grow(i + 1)
        self.actions[i] += actions
        self.actions_failed[i] += failed


def workflow_series(series: TimeSeries, workflow: str) -> WorkflowSeries:
    """The workflow's series in ``series``, created (or upgraded from a plain one) on use."""
    current = series.sources.get(workflow)
    if isinstance(current, WorkflowSeries):
        return current
    ws = WorkflowSeries(name=workflow, source="workflow")
    if current is not None:
        ws.counts, ws.failures, ws.latency = current.counts, current.failures, current.latency
        ws._grow(len(current.counts))
    series.sources[workflow] = ws
    return ws


def apply_buckets(series: TimeSeries, buckets: Iterable[LoadBucket]) -> None:
    """Merge buckets into ``series``: one :class:`WorkflowSeries` (``source="workflow"``)
    per workflow, with its requests and its clinical actions."""
    for b in buckets:
        if not (b.count or b.actions):
            continue
        ws = workflow_series(series, b.workflow)
        if b.count:
            ws.add_bucket(b.index, b.count, b.failures, b.hist)
        if b.actions:
            ws.add_actions(b.index, b.actions, b.actions_failed)


def child_config(
    spec: LoadSpec, *, monotonic_t0: float, phases: list[tuple[float, int]], parent_pid: int
) -> dict[str, Any]:
    """What every Locust process of the run reads from ``RESILDRILL_LOAD``.

    Never the bearer token: it reaches the master on its stdin and the workers over
    Locust's channel (``token_pushed`` tells the master to wait for it before answering
    a worker's request for it).
    """
    return {
        "spec": spec.model_dump(mode="json"),
        "t0": monotonic_t0,
        "phases": [[float(a), int(n)] for a, n in phases],
        "parent_pid": parent_pid,
        "token_pushed": True,
    }


def read_token(path: Path) -> str:
    """The bearer token in ``path``: its text without surrounding whitespace.

    Raises:
        OSError: the file cannot be read.
        ValueError: it is empty or holds more than one line (the message never quotes it).
    """
    with open(path, "rb") as f:
        raw = f.read(65_537)
    if len(raw) > 65_536:
        raise ValueError("it is larger than 64 KiB")
    try:
        token = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError("it is not UTF-8 text") from None
    if not token:
        raise ValueError("it is empty")
    if any(c in token for c in "\r\n\0"):
        raise ValueError("it holds more than one line")
    return token


class TokenFile:
    """A bearer token file watched for a new token (vault agent, oauth2 sidecars and
    ``kubectl create token`` jobs refresh credentials on disk).

    ``check()`` stats the file (following symlinks, so a Kubernetes secret volume's
    symlink swap counts) and re-reads it when its inode, size or mtime changed, or
    ``every_s`` after the last read; it returns a token only when it differs from the
    last one. A file that is briefly missing or empty (being replaced) keeps the last
    token; each run of failed reads is counted once in ``read_failures``.
    """

    def __init__(self, path: Path, every_s: float = _TOKEN_CHECK_S) -> None:
        self.path = path
        self.every_s = every_s
        self.token: str | None = None
        self.refreshes = 0
        self.read_failures = 0
        self.last_error: str | None = None
        self._stamp: tuple[int, int, int, int] | None = None
        self._read_at = -1e9

    def first(self) -> str:
        """The token at start; raises ToolFailed when there is none (nothing is started)."""
        try:
            self._stamp = self._stat()
            self._read_at = time.monotonic()
            self.token = read_token(self.path)
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ToolFailed(
                f"load.bearer_token_file: no bearer token in {self.path}: {why}"
            ) from None
        return self.token

    def _stat(self) -> tuple[int, int, int, int]:
        st = os.stat(self.path)
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def check(self, *, force: bool = False) -> str | None:
        """A new token when the file changed (or it is time to re-read), else None."""
        now = time.monotonic()
        try:
            stamp = self._stat()
        except OSError as exc:
            self._failed(exc.strerror or str(exc))
            return None
        if not force and stamp == self._stamp and now - self._read_at < self.every_s:
            return None
        try:
            token = read_token(self.path)
        except (OSError, ValueError) as exc:
            self._failed(exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc))
            return None
        self._stamp, self._read_at, self.last_error = stamp, now, None
        if token == self.token:
            return None
        self.token = token
        self.refreshes += 1
        return token

    def _failed(self, why: str) -> None:
        if self.last_error is None:
            self.read_failures += 1
        self.last_error = why


def _libc_prctl() -> Callable[..., int] | None:
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
        return prctl
    except (OSError, AttributeError):  # not Linux: the plugin's parent watch still applies
        return None


_PRCTL = _libc_prctl()


def _die_with(parent: int) -> Callable[[], None]:
    """A preexec_fn: SIGKILL this child when ``parent`` dies (checked after, for the race)."""

    def preexec() -> None:
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)  # the parent died between fork and prctl

    return preexec


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoadDriver:
    """Runs the drill's clinician load in Locust processes and collects its timeline.

    Args:
        spec: the drill's ``load`` section.
        host: base URL of the FHIR API (``spec.host`` wins when set).
        run_dir: the run's folder; logs and ``load/writes.jsonl`` go under ``load/``.
        monotonic_t0: the run's time origin (``time.monotonic()`` in this process).
        phases: ``(seconds from monotonic_t0, users)`` steps from the plan; default: the
            spec's shape (``sizing.phases_for``) starting when ``start()`` is called.
        drill_dir: the drill file's folder, where a relative ``bearer_token_file`` or
            ``locustfile`` is (the runner passes it); default: the current directory.
    """

    def __init__(
        self,
        spec: LoadSpec,
        *,
        host: str,
        run_dir: Path,
        monotonic_t0: float,
        phases: list[tuple[float, int]] | None = None,
        drill_dir: Path | None = None,
    ) -> None:
        self.spec = spec
        self.host = (spec.host or host).rstrip("/")
        self.dir = Path(run_dir) / "load"
        self.t0 = monotonic_t0
        self._phases = phases
        self._procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []
        self._queue: deque[dict[str, Any]] = deque()
        self._reader: threading.Thread | None = None
        self._state: dict[str, Any] = {}
        self._state_cv = threading.Condition()
        self._writes_path = self.dir / "writes.jsonl"
        self._writes_file: IO[str] | None = None
        self._writes = 0
        self._messages_path = self.dir / "messages.jsonl"
        self._messages_file: IO[str] | None = None
        self._stopped = False
        self._drill_dir = drill_dir
        #: The bearer token the workers have been sent (None: no token).
        self._token: str | None = None
        self._token_file: TokenFile | None = None
        self._token_thread: threading.Thread | None = None
        self._token_stop = threading.Event()
        self._stdin_lock = threading.Lock()
        #: Whole-run totals per workflow, kept by poll().
        self.totals: dict[str, WorkflowTotals] = {}
        #: Sample age on arrival (s): now - the earliest completion in each message.
        self.ages = LatencyHistogram()
        self.late_dropped = 0
        self.messages = 0
        #: Set by poll() when a Locust process died before stop(): load (and its timeline)
        #: is then partial, and the report should say so.
        self.failure: str | None = None
        #: Samples from a remote worker that arrived before its clock was measured.
        self.unsynced_dropped = 0
        #: Remote worker -> (offset of its monotonic clock from ours, uncertainty), seconds.
        self.remote_clocks: dict[str, tuple[float, float]] = {}
        #: Requests each remote worker contributed (placed in the timeline).
        self.remote_requests: dict[str, int] = {}
        self._port: int | None = None

    # -- lifecycle -------------------------------------------------------------------

    @property
    def pids(self) -> list[int]:
        """Pids of the master and the local workers (each leads its own session)."""
        return [p.pid for p in self._procs]

    @property
    def master_port(self) -> int | None:
        """Where workers connect (``locust --worker --master-port``), once started."""
        return self._port

    @property
    def phases(self) -> list[tuple[float, int]]:
        """The user steps the load shape follows, in seconds from ``monotonic_t0``."""
        if self._phases is None:
            offset = time.monotonic() - self.t0
            self._phases = [(offset + at, n) for at, n in sizing.phases_for(self.spec)]
        return self._phases

    def _master_host(self) -> str:
        """Where local workers reach the master: loopback unless it listens elsewhere only."""
        bind = self.spec.master_bind
        return "127.0.0.1" if bind in ("0.0.0.0", "*", "::", "127.0.0.1", "localhost") else bind

    def _beside_drill(self, name: str) -> Path:
        """A path from the drill file: absolute, or relative to the drill's folder."""
        path = Path(name).expanduser()
        return path if path.is_absolute() else (self._drill_dir or Path.cwd()) / path

    def token_path(self) -> Path | None:
        """Where the drill's ``bearer_token_file`` is (relative: to the drill file)."""
        name = self.spec.bearer_token_file
        return None if name is None else self._beside_drill(name)

    def _first_token(self) -> str | None:
        """The token at start: from the file (ToolFailed without one) or the variable."""
        path = self.token_path()
        if path is not None:
            self._token_file = TokenFile(path)
            return self._token_file.first()
        if self.spec.bearer_token_env:
            return os.environ.get(self.spec.bearer_token_env) or None
        return None

    def _watch_token(self) -> None:
        """Token thread: push each new token in the file to the master (then the workers)."""
        tf = self._token_file
        assert tf is not None
        while not self._token_stop.wait(_TOKEN_STAT_S):
            token = tf.check()
            if token is not None:
                self._token = token
                self._send({"cmd": "token", "token": token}, self._procs[:1])

    def _locustfiles(self) -> str:
        if self.spec.locustfile:
            return f"{_LOCUSTFILES / 'plugin.py'},{self._beside_drill(self.spec.locustfile)}"
        return str(_LOCUSTFILES / "clinical.py")

    def _spawn(
        self, name: str, args: list[str], env: dict[str, str], pass_fds: tuple[int, ...] = ()
    ) -> subprocess.Popen[bytes]:
        log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "-m", "locust", *args],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            pass_fds=pass_fds,
            start_new_session=True,
            preexec_fn=_die_with(os.getpid()),
            close_fds=True,
        )
        self._procs.append(proc)
        return proc

    def start(self) -> None:
        """Spawn the master and workers; return once users are spawning (bounded wait).

        Raises:
            ToolFailed: Locust exited or did not start within ``START_TIMEOUT_S``; every
                process started so far has been stopped.
        """
        if self._procs:
            raise ToolFailed("load: LoadDriver.start() called twice")
        self._token = self._first_token()  # before anything is started
        self.dir.mkdir(parents=True, exist_ok=True)
        self._writes_file = open(self._writes_path, "a", encoding="utf-8")  # noqa: SIM115
        self._messages_file = open(self._messages_path, "a", encoding="utf-8")  # noqa: SIM115
        cfg = child_config(
            self.spec, monotonic_t0=self.t0, phases=self.phases, parent_pid=os.getpid()
        )
        env = {**os.environ, "RESILDRILL_LOAD": json.dumps(cfg), "PYTHONUNBUFFERED": "1"}
        port = self._port = self.spec.master_port or _free_port()
        files = self._locustfiles()
        common = ["-f", files, "--host", self.host, "--loglevel", "WARNING"]
        read_fd, write_fd = os.pipe()
        try:
            self._spawn(
                "master",
                [
                    *common,
                    "--headless",
                    "--master",
                    "--master-bind-host",
                    self.spec.master_bind,
                    "--master-bind-port",
                    str(port),
                    "--expect-workers",
                    str(self.spec.workers + self.spec.remote_workers),
                    "--expect-workers-max-wait",
                    str(int(START_TIMEOUT_S)),
                    "--only-summary",
                ],
                {**env, "RESILDRILL_STREAM_FD": str(write_fd)},
                pass_fds=(write_fd,),
            )
        finally:
            os.close(write_fd)  # only the master holds the write end: EOF when it exits
        # The first token (or none) before any worker exists: the master answers each
        # worker's request for it only once it has this line.
        self._send({"cmd": "token", "token": self._token}, self._procs[:1])
        if self._token_file is not None:
            self._token_thread = threading.Thread(
                target=self._watch_token, name="resildrill-load-token", daemon=True
            )
            self._token_thread.start()
        self._reader = threading.Thread(
            target=self._read, args=(read_fd,), name="resildrill-load-stream", daemon=True
        )
        self._reader.start()
        for i in range(self.spec.workers):
            self._spawn(
                f"worker-{i}",
                [
                    *common,
                    "--worker",
                    "--master-host",
                    self._master_host(),
                    "--master-port",
                    str(port),
                ],
                env,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        with self._state_cv:
            while "started" not in self._state:
                dead = [p for p in self._procs if p.poll() is not None]
                left = deadline - time.monotonic()
                if dead or left <= 0:
                    why = (
                        f"{self._name_of(dead[0])} exited: {self._last_line(dead[0])}"
                        if dead
                        else f"did not start within {START_TIMEOUT_S:g} s"
                    )
                    self._state_cv.release()
                    try:
                        self.stop(timeout_s=5)
                    finally:
                        self._state_cv.acquire()
                    raise ToolFailed(f"load: Locust {why} (logs: {self.dir})")
                self._state_cv.wait(min(left, 0.2))

    def _name_of(self, proc: subprocess.Popen[bytes]) -> str:
        i = self._procs.index(proc)
        return "master" if i == 0 else f"worker-{i - 1}"

    def _last_line(self, proc: subprocess.Popen[bytes]) -> str:
        """The last non-empty line of a process's log: usually the exception that killed it."""
        try:
            text = (self.dir / f"{self._name_of(proc)}.log").read_text(errors="replace")
        except OSError:
            return "no log"
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return lines[-1][:300] if lines else f"exit code {proc.returncode}"

    def _read(self, fd: int) -> None:
        """Reader thread: the master's JSON lines -> queue, writes file, state."""
        with open(fd, "rb") as stream:
            for line in stream:
                msg = decode(line)
                if msg is None:
                    continue
                kind = msg.get("type")
                if kind == "buckets":
                    msg["arrived"] = time.monotonic()
                    writes = msg.pop("writes", None)
                    if writes and self._writes_file is not None:
                        for w in writes:
                            self._writes_file.write(json.dumps(w) + "\n")
                        self._writes_file.flush()
                        self._writes += len(writes)
                    sent = msg.pop("messages", None)
                    if sent and self._messages_file is not None:
                        self._save_messages(sent, msg)
                    self._queue.append(msg)
                elif kind == "state":
                    with self._state_cv:
                        self._state[str(msg.get("state"))] = msg
                        self._state_cv.notify_all()
        with self._state_cv:
            self._state["eof"] = True
            self._state_cv.notify_all()

    def poll(self) -> list[LoadBucket]:
        """Buckets that arrived since the last call (non-blocking).

        Also notices a Locust process that died on its own (``failure``).
        """
        if self.failure is None and not self._stopped:
            for p in self._procs:
                if p.poll() is not None:
                    self.failure = f"{self._name_of(p)} exited: {self._last_line(p)}"
                    break
            if self._procs and self._procs[0].poll() is not None:
                # Without the master nothing is measured: stop the workers' unmeasured
                # load on the target now rather than at the end of the drill.
                for p in self._procs[1:]:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(p.pid, signal.SIGKILL)
        out: list[LoadBucket] = []
        horizon = self.spec.request_timeout + _LATE_SLACK_S
        while self._queue:
            msg = self._queue.popleft()
            self.messages += 1
            arrived = float(msg["arrived"])
            # A remote worker's stamps are on its own clock: subtract its measured offset.
            shift = 0.0
            if "clock_offset" in msg:
                if msg["clock_offset"] is None:  # not synchronised yet: cannot be placed
                    self.unsynced_dropped += sum(int(row[2]) for row in msg["buckets"])
                    continue
                shift = float(msg["clock_offset"])
                self.remote_clocks[str(msg.get("worker"))] = (
                    shift,
                    float(msg.get("clock_uncertainty") or 0.0),
                )
            if msg.get("oldest_done") is not None:
                self.ages.add(max(0.0, arrived - (float(msg["oldest_done"]) - shift)))
            remote = str(msg.get("worker")) if "clock_offset" in msg else None
            for wf, raw_start, count, failures, hist, actions, actions_failed in msg["buckets"]:
                start = float(raw_start) - shift
                if arrived - (start + RESOLUTION_S) > horizon:
                    self.late_dropped += int(count)
                    continue
                if remote is not None:
                    self.remote_requests[remote] = self.remote_requests.get(remote, 0) + int(count)
                b = LoadBucket(
                    str(wf),
                    index_of(start, self.t0),
                    int(count),
                    int(failures),
                    LatencyHistogram.from_json(hist),
                    int(actions),
                    int(actions_failed),
                )
                self.totals.setdefault(b.workflow, WorkflowTotals()).add(b)
                out.append(b)
        return out

    def _send(
        self, cmd: dict[str, Any], procs: list[subprocess.Popen[bytes]] | None = None
    ) -> None:
        data = (json.dumps(cmd) + "\n").encode()
        with self._stdin_lock:  # the token thread writes too
            for p in self._procs if procs is None else procs:
                if p.stdin is not None and p.poll() is None:
                    with contextlib.suppress(OSError, ValueError):
                        p.stdin.write(data)
                        p.stdin.flush()

    def stop(self, timeout_s: float = 10) -> None:
        """Stop users (flushing the last buckets), end every Locust process, reap; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        deadline = time.monotonic() + timeout_s
        self._token_stop.set()
        if self._token_thread is not None:
            self._token_thread.join(timeout=2.0)
        if self._procs and self._procs[0].poll() is None:
            self._send({"cmd": "stop"}, self._procs[:1])
            with self._state_cv:
                self._state_cv.wait_for(
                    lambda: "stopped" in self._state or "eof" in self._state,
                    timeout=max(0.0, min(5.0, (deadline - time.monotonic()) / 2)),
                )
        for p in self._procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGTERM)
        for p in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=max(0.05, min(3.0, deadline - time.monotonic())))
        for p in self._procs:
            # The whole session: anything a Locust process forked goes too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=2.0)
            if p.stdin is not None:
                with self._stdin_lock, contextlib.suppress(OSError):
                    p.stdin.close()
        if self._reader is not None:
            self._reader.join(timeout=2.0)
        for log in self._logs:
            log.close()
        if self._writes_file is not None:
            self._writes_file.close()
        if self._messages_file is not None:
            self._messages_file.close()

    # -- results ---------------------------------------------------------------------

    def writes(self) -> list[dict[str, Any]]:
        """Every acknowledged write the workers reported (from ``load/writes.jsonl``)."""
        if not self._writes_path.exists():
            return []
        out = []
        with open(self._writes_path, encoding="utf-8") as f:
            for line in f:
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def _save_messages(self, sent: list[dict[str, Any]], msg: dict[str, Any]) -> None:
        """HL7 messages a worker sent, on the runner's clock, to ``load/messages.jsonl``."""
        assert self._messages_file is not None
        offset = msg.get("clock_offset", 0.0)
        for m in sent:
            if offset is None:  # a remote worker not yet synchronised: its times mean nothing
                m["sent_at"] = m["acked_at"] = None
            else:
                m["sent_at"] = float(m["sent_at"]) - float(offset)
                m["acked_at"] = float(m["acked_at"]) - float(offset)
            m["worker"] = msg.get("worker")
            self._messages_file.write(json.dumps(m) + "\n")
        self._messages_file.flush()

    def hl7_messages(self) -> list[dict[str, Any]]:
        """Every HL7 message the workers sent, with its ACK (from ``load/messages.jsonl``)."""
        if not self._messages_path.exists():
            return []
        out = []
        with open(self._messages_path, encoding="utf-8") as f:
            for line in f:
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def integrity_check(self, timeout_s: float = 30) -> IntegrityResult:
        """After the recovery window: read back every acknowledged write."""
        headers: dict[str, str] = {}
        if self._token_file is not None:
            self._token = self._token_file.check(force=True) or self._token  # fresh
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return _integrity.check_writes(
            self.writes(),
            base_url=self.host,
            headers=headers,
            ca_bundle=self.spec.ca_bundle,
            timeout_s=timeout_s,
            request_timeout_s=min(5.0, self.spec.request_timeout),
            spec=self.spec.integrity,
            drill_dir=self._drill_dir,
            dicom=self.spec.dicom,
        )

    def delivery_check(self, wall_t0: float, timeout_s: float = 60) -> list[dict[str, Any]] | None:
        """After the recovery window: read every HL7 message sent back from the EHR (None:
        the load sends no HL7). One row per message, on the run's clock (``load/delivery.py``).
        """
        if self.spec.hl7 is None:
            return None
        headers: dict[str, str] = {}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return _delivery.read_back_messages(
            self.hl7_messages(),
            hl7=self.spec.hl7,
            base_url=self.host,
            headers=headers,
            ca_bundle=self.spec.ca_bundle,
            monotonic_t0=self.t0,
            wall_t0=wall_t0,
            deadline=time.monotonic() + timeout_s,
            request_timeout_s=min(5.0, self.spec.request_timeout),
        )

    def summary(self) -> dict[str, Any]:
        """Whole-run load figures shaped like report.json ``load`` (without SLO waits)."""
        return {
            **totals_json(self.totals),
            "late_dropped": self.late_dropped,
            "failure": self.failure,
            "unsynced_dropped": self.unsynced_dropped,
            "remote_workers": {
                name: {
                    "clock_offset_s": round(off, 6),
                    "uncertainty_s": round(unc, 6),
                    "requests": self.remote_requests.get(name, 0),
                }
                for name, (off, unc) in sorted(self.remote_clocks.items())
            },
            "sample_age_p99_ms": _ms(self.ages.quantile(0.99)),
            "bearer_token": self._token_summary(),
        }

    def _token_summary(self) -> dict[str, Any] | None:
        """Where the token came from and how often it changed (never the token itself)."""
        tf = self._token_file
        if tf is not None:
            return {
                "source": "file",
                "refreshes": tf.refreshes,
                "read_failures": tf.read_failures,
                "last_error": tf.last_error,
            }
        if self.spec.bearer_token_env:
            return {"source": "env", "present": self._token is not None}
        return None


def _ms(value: float | None) -> float | None:
    return round(value * 1000, 3) if value is not None else None
