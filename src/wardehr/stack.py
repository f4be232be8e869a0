"""Start, stop and inspect the ward EHR described by a target file (``target up|down|status``).

Owns the translation of a target's ``stack:`` settings into processes. The settings name
every network hop as an address, so a drill can route any hop through a proxy by changing
one address (``listen`` is where a server binds, ``address`` where its clients connect;
``address`` defaults to ``listen``)::

    stack:
      kind: ward-ehr
      store: sqlite                  # or postgres
      seed: 42
      restart_delay: 1s
      gateway: {listen: 127.0.0.1:18080}                       # clients -> gateway
      replicas:
        replica-a: {listen: 127.0.0.1:18081}                   # gateway -> replica
        replica-b: {listen: 127.0.0.1:18082, address: 127.0.0.1:28082}
      database: {path: ward.sqlite}                            # sqlite: a file in run_dir
      # database: {listen: 127.0.0.1:15432}                    # replica -> postgres

Processes: ``supervisor`` (started in its own session, so a Ctrl-C in the terminal does not
reach the system) starts ``database`` (PostgreSQL only), the replicas and the ``gateway``.
Pidfiles are ``RUN_DIR/pids/<service>.pid`` and logs ``RUN_DIR/logs/<service>.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from resildrill.drill.loader import LoadedTarget, load_target
from resildrill.drill.model import Duration
from resildrill.errors import InvalidInput, ToolFailed
from resildrill.stacks import ServiceStatus, StackStatus
from wardehr._proc import live_pid, parse_address, proc_state, read_pidfile
from wardehr.seed import population

__all__ = [
    "ServiceStatus",
    "StackConfig",
    "StackStatus",
    "config_of",
    "down",
    "free_port",
    "status",
    "up",
    "write_target",
]

PG_BIN_DIRS = (
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
)
PG_USER = "wardehr"
PG_OS_USER = "postgres"

#: Supervisors started by this process: kept so they are reaped (no zombie, no ResourceWarning)
#: when ``down`` stops them from the same process, e.g. in tests and the demo.
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Hop(_Model):
    """A server's bind address and the address its clients use (a proxy may sit between)."""

    listen: str
    address: str | None = None
    mllp: str | None = Field(
        default=None, description="a replica's HL7 v2 inbound (MLLP), host:port to bind"
    )

    @model_validator(mode="after")
    def _addresses(self) -> Hop:
        for value in (self.listen, self.address, self.mllp):
            if value is not None:
                parse_address(value)
        return self

    @property
    def connect(self) -> str:
        """Where clients of this hop connect."""
        return self.address or self.listen


class DatabaseSpec(_Model):
    """SQLite: ``path`` (relative to run_dir). PostgreSQL: ``listen`` (+ ``address``)."""

    path: str = "ward.sqlite"
    listen: str | None = None
    address: str | None = None
    data_dir: str = "pgdata"


class EngineSpec(_Model):
    """The interface engine (``wardehr.engine``): MLLP in from the lab, a durable queue, MLLP
    out to a replica's inbound (``forward``: its address, or a proxy in front of it)."""

    listen: str
    forward: str
    queue: str = Field(default="engine-queue.sqlite", description="relative to run_dir")
    ack_timeout: Duration = 5.0


class PacsSpec(_Model):
    """The PACS (:mod:`wardehr.pacs`): Debian's dcmqrscp in a network namespace of its own,
    reached through a relay on ``listen``; its archive (images, index) in ``storage``."""

    listen: str
    storage: str = Field(default="pacs", description="relative to run_dir")
    ae_title: str = Field(default="WARDPACS", min_length=1, max_length=16)


class StackConfig(_Model):
    """The ``stack:`` settings of a ward EHR target."""

    kind: Literal["ward-ehr"]
    store: Literal["sqlite", "postgres"] = "sqlite"
    seed: int = 42
    beds_per_ward: int = Field(default=12, ge=1, le=200)
    restart_delay: Duration = 1.0
    upstream_timeout: Duration = 2.0
    health_interval: Duration = 0.5
    health_timeout: Duration = 0.5
    liveness_interval: Duration = 1.0
    liveness_failures: int = Field(default=3, ge=0, description="0: no liveness checks")
    gateway: Hop
    replicas: dict[str, Hop] = Field(min_length=1)
    database: DatabaseSpec = Field(default_factory=DatabaseSpec)
    engine: EngineSpec | None = None
    pacs: PacsSpec | None = None

    @model_validator(mode="after")
    def _postgres_needs_listen(self) -> StackConfig:
        if self.store == "postgres" and self.database.listen is None:
            raise ValueError("store postgres needs database.listen (host:port)")
        return self


@dataclass(frozen=True)
class Layout:
    """Where a target's processes keep their files."""

    target: LoadedTarget
    config: StackConfig
    run_dir: Path

    @property
    def pids(self) -> Path:
        """Folder of the pidfiles."""
        return self.run_dir / "pids"

    @property
    def logs(self) -> Path:
        """Folder of the logs."""
        return self.run_dir / "logs"

    def pidfile(self, service: str) -> Path:
        """The pidfile of a service."""
        return self.pids / f"{service}.pid"

    def log(self, service: str) -> Path:
        """The log of a service."""
        return self.logs / f"{service}.log"

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file (store sqlite)."""
        p = Path(self.config.database.path)
        return p if p.is_absolute() else self.run_dir / p

    @property
    def pg_data(self) -> Path:
        """The PostgreSQL data directory (store postgres)."""
        p = Path(self.config.database.data_dir)
        return p if p.is_absolute() else self.run_dir / p

    @property
    def pg_dsn(self) -> str:
        """How replicas reach PostgreSQL (the replica -> database hop)."""
        db = self.config.database
        host, port = parse_address(db.address or db.listen or "")
        return f"host={host} port={port} dbname=postgres user={PG_USER}"

    def services(self) -> list[str]:
        """Every service in start order (the supervisor last: it starts the others)."""
        names = ["database"] if self.config.store == "postgres" else []
        engine = ["engine"] if self.config.engine is not None else []
        pacs = ["pacs"] if self.config.pacs is not None else []
        return [*names, *self.config.replicas, "gateway", *engine, *pacs, "supervisor"]


def _layout(target: LoadedTarget | str | Path) -> Layout:
    loaded = target if isinstance(target, LoadedTarget) else _load(target)
    spec = loaded.spec
    if not spec.stack or spec.stack.get("kind") != "ward-ehr":
        raise InvalidInput(f"{loaded.path}: stack: 'target up' starts only 'kind: ward-ehr' stacks")
    try:
        config = StackConfig.model_validate(spec.stack)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{loaded.path}: stack.{where}: {first['msg']}") from None
    if spec.run_dir is None:
        run_dir = Path.cwd() / ".state" / spec.name
    else:
        run_dir = Path(spec.run_dir)
        run_dir = run_dir if run_dir.is_absolute() else loaded.path.parent / run_dir
    return Layout(loaded, config, run_dir.resolve())


def _load(path: str | Path) -> LoadedTarget:
    try:
        return load_target(path)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise InvalidInput(f"{path}: {where}: {first['msg']}") from None


# --- the plan the supervisor runs ---------------------------------------------------------


def _pg_bin() -> Path:
    for d in PG_BIN_DIRS:
        if (Path(d) / "postgres").exists():
            return Path(d)
    found = shutil.which("postgres")
    if found:
        return Path(found).parent
    raise ToolFailed(
        "PostgreSQL is not installed: run scripts/install-system-deps.sh "
        "(apt-get install -y postgresql), or use the sqlite target"
    )


def _children(lay: Layout) -> list[dict[str, Any]]:
    cfg = lay.config
    py = sys.executable
    children: list[dict[str, Any]] = []
    if cfg.store == "postgres":
        assert cfg.database.listen is not None
        host, port = parse_address(cfg.database.listen)
        children.append(
            {
                "name": "database",
                "argv": [
                    str(_pg_bin() / "postgres"),
                    "-D",
                    str(lay.pg_data),
                    "-h",
                    host,
                    "-p",
                    str(port),
                    "-c",
                    "unix_socket_directories=",
                    "-c",
                    "fsync=on",
                    "-c",
                    "synchronous_commit=on",
                    "-c",
                    "full_page_writes=on",
                    "-c",
                    "max_connections=60",
                    "-c",
                    "shared_buffers=32MB",
                    "-c",
                    "log_min_messages=warning",
                ],
                "pidfile": str(lay.pidfile("database")),
                "log": str(lay.log("database")),
                "user": PG_OS_USER,
                "stop_signal": "SIGINT",  # fast shutdown: do not wait for replicas to disconnect
            }
        )
        db_args = ["--store", "postgres", "--db", lay.pg_dsn]
    else:
        db_args = ["--store", "sqlite", "--db", str(lay.sqlite_path)]
    for name, hop in cfg.replicas.items():
        children.append(
            {
                "name": name,
                "argv": [
                    py,
                    "-m",
                    "wardehr.server",
                    "--name",
                    name,
                    "--listen",
                    hop.listen,
                    *db_args,
                    "--seed",
                    str(cfg.seed),
                    "--beds-per-ward",
                    str(cfg.beds_per_ward),
                    "--pidfile",
                    str(lay.pidfile(name)),
                    *(("--mllp-listen", hop.mllp) if hop.mllp else ()),
                ],
                "pidfile": str(lay.pidfile(name)),
                "log": str(lay.log(name)),
                "livez": f"http://{hop.listen}/livez",
            }
        )
    upstreams = [f"--upstream={n}={h.connect}" for n, h in cfg.replicas.items()]
    children.append(
        {
            "name": "gateway",
            "argv": [
                py,
                "-m",
                "wardehr.gateway",
                "--listen",
                cfg.gateway.listen,
                *upstreams,
                "--timeout",
                str(cfg.upstream_timeout),
                "--health-interval",
                str(cfg.health_interval),
                "--health-timeout",
                str(cfg.health_timeout),
                "--pidfile",
                str(lay.pidfile("gateway")),
            ],
            "pidfile": str(lay.pidfile("gateway")),
            "log": str(lay.log("gateway")),
            "livez": f"http://{cfg.gateway.listen}/livez",
        }
    )
    if cfg.engine is not None:
        queue = Path(cfg.engine.queue)
        children.append(
            {
                "name": "engine",
                "argv": [
                    *(py, "-m", "wardehr.engine", "--listen", cfg.engine.listen),
                    *("--forward", cfg.engine.forward),
                    *("--queue", str(queue if queue.is_absolute() else lay.run_dir / queue)),
                    *("--ack-timeout", str(cfg.engine.ack_timeout)),
                    *("--pidfile", str(lay.pidfile("engine"))),
                ],
                "pidfile": str(lay.pidfile("engine")),
                "log": str(lay.log("engine")),
            }
        )
    if cfg.pacs is not None:
        storage = Path(cfg.pacs.storage)
        children.append(
            {
                "name": "pacs",
                "argv": [
                    *(py, "-m", "wardehr.pacs", "--listen", cfg.pacs.listen),
                    *(
                        "--storage",
                        str(storage if storage.is_absolute() else lay.run_dir / storage),
                    ),
                    *("--ae-title", cfg.pacs.ae_title),
                    *("--pidfile", str(lay.pidfile("pacs"))),
                ],
                # pacs.pid names dcmqrscp itself, written by the archive's side once it runs
                # (a kill must never hit the relay); the supervisor records the relay apart
                "pidfile": str(lay.pidfile("pacs-relay")),
                "log": str(lay.log("pacs")),
            }
        )
    return children


def _prepare_postgres(lay: Layout) -> None:
    """initdb once (as the ``postgres`` OS user when run as root: PostgreSQL refuses root)."""
    data = lay.pg_data
    if (data / "PG_VERSION").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {}
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam(PG_OS_USER)
        os.chown(data, pw.pw_uid, pw.pw_gid)
        os.chmod(data, 0o700)
        kwargs["user"] = PG_OS_USER
        _check_traversable(data)
    # trust on loopback only: a staging simulator on 127.0.0.1, never a real deployment
    result = subprocess.run(
        [
            str(_pg_bin() / "initdb"),
            "-D",
            str(data),
            "-U",
            PG_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        check=False,
        **kwargs,
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise ToolFailed(f"initdb failed in {data}: {' '.join(tail)}")


def _check_traversable(path: Path) -> None:
    for parent in path.parents:
        if not os.stat(parent).st_mode & 0o001:
            raise ToolFailed(
                f"the postgres user cannot reach {path}: {parent} is not searchable by others "
                f"(chmod o+x {parent}, or put run_dir elsewhere)"
            )


def _port_free(address: str) -> bool:
    host, port = parse_address(address)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now (for tests and demos)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- status ---------------------------------------------------------------------------------


# ServiceStatus and StackStatus are the product's stack contract (resildrill.stacks).


def http_ok(url: str, timeout_s: float) -> tuple[bool, str]:
    """(answered 200, what it answered) for a GET of ``url``; never raises."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return resp.status == 200, f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return False, f"{type(exc).__name__}"


def _tcp_ok(address: str, timeout_s: float) -> tuple[bool, str]:
    host, port = parse_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True, "accepts connections"
    except OSError as exc:
        return False, type(exc).__name__


def _dicom_ok(address: str, ae_title: str, timeout_s: float) -> tuple[bool, str]:
    """A C-ECHO answered with success: the archive itself is up, not only the relay."""
    from resildrill.dicom.echo import echo  # pynetdicom: only for a stack with a PACS

    host, port = parse_address(address)
    result = echo(host, port, called_ae=ae_title, calling_ae="WARDEHR", timeout_s=timeout_s)
    return result.ok, "C-ECHO ok" if result.ok else str(result.detail)


def status(target: LoadedTarget | str | Path, *, timeout_s: float = 0.5) -> StackStatus:
    """Each service's pid, process state and health check."""
    lay = _layout(target)
    cfg = lay.config
    restarts: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError, KeyError):
        restarts = json.loads((lay.run_dir / "supervisor.json").read_text())["children"]
    out = StackStatus(lay.target.spec.name, lay.run_dir)
    for name in lay.services():
        pid = live_pid(lay.pidfile(name))
        state = "stopped"
        if pid is not None:
            state = "frozen" if proc_state(pid) == "T" else "running"
        healthy: bool | None = None
        address: str | None = None
        detail = ""
        if name == "gateway":
            address = cfg.gateway.connect
            healthy, detail = http_ok(f"http://{address}/healthz", timeout_s)
        elif name in cfg.replicas:
            address = cfg.replicas[name].connect
            healthy, detail = http_ok(f"http://{address}/healthz", timeout_s)
        elif name == "database":
            address = cfg.database.address or cfg.database.listen
            assert address is not None
            healthy, detail = _tcp_ok(address, timeout_s)
        elif name == "engine" and cfg.engine is not None:
            address = cfg.engine.listen
            healthy, detail = _tcp_ok(address, timeout_s)
        elif name == "pacs" and cfg.pacs is not None:
            address = cfg.pacs.listen
            healthy, detail = _dicom_ok(address, cfg.pacs.ae_title, timeout_s)
        else:
            healthy = pid is not None
        if pid is None and name != "supervisor":
            healthy = False if healthy is not True else healthy
        count = restarts.get(name, {}).get("restarts") if name != "supervisor" else None
        out.services.append(ServiceStatus(name, pid, state, healthy, address, count, detail))
    return out


# --- up / down --------------------------------------------------------------------------------


def up(target: LoadedTarget | str | Path, *, timeout_s: float = 60.0) -> StackStatus:
    """Start the stack (idempotent) and wait until every service is healthy.

    ``started`` on the result says whether this call started it; when it was already running,
    it is left as it is (and should not be stopped by a caller that did not start it).

    Raises :class:`~resildrill.errors.ToolFailed` (naming the log to read) when it does not
    become healthy within ``timeout_s``; what was started is stopped again.
    """
    lay = _layout(target)
    if live_pid(lay.pidfile("supervisor")) is not None:
        already = _wait_healthy(lay, timeout_s)
        already.started = False
        return already
    _stop_leftovers(lay)
    addresses = [lay.config.gateway.listen, *(h.listen for h in lay.config.replicas.values())]
    if lay.config.store == "postgres":
        assert lay.config.database.listen is not None
        addresses.append(lay.config.database.listen)
    busy = [a for a in addresses if not _port_free(a)]
    if busy:
        raise ToolFailed(f"address already in use: {', '.join(busy)} (another stack running?)")
    lay.pids.mkdir(parents=True, exist_ok=True)
    lay.logs.mkdir(parents=True, exist_ok=True)
    cfg = lay.config
    if cfg.store == "sqlite":
        from wardehr.store import SqliteStore

        store = SqliteStore(str(lay.sqlite_path))
        try:
            # created here, once, so the replicas never race to create the schema
            store.ensure_ready(population(cfg.seed, beds_per_ward=cfg.beds_per_ward))
        finally:
            store.close()
    else:
        import importlib.util

        if importlib.util.find_spec("psycopg") is None:
            raise ToolFailed("the postgres store needs psycopg: pip install 'resildrill[postgres]'")
        _prepare_postgres(lay)
    plan = {
        "pidfile": str(lay.pidfile("supervisor")),
        "status_file": str(lay.run_dir / "supervisor.json"),
        "restart_delay_s": cfg.restart_delay,
        "liveness_interval_s": cfg.liveness_interval,
        "liveness_failures": cfg.liveness_failures,
        "children": _children(lay),
    }
    plan_path = lay.run_dir / "stack.json"
    plan_path.write_text(json.dumps(plan, indent=1))
    with open(lay.log("supervisor"), "ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wardehr.supervisor", "--plan", str(plan_path)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd=str(lay.run_dir),
        )
    _STARTED[proc.pid] = proc
    try:
        current = _wait_healthy(lay, timeout_s, proc)
        current.started = True
        return current
    except ToolFailed:
        down(lay.target)
        raise


def _wait_healthy(
    lay: Layout, timeout_s: float, proc: subprocess.Popen[bytes] | None = None
) -> StackStatus:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc is not None and proc.poll() is not None:
            raise ToolFailed(
                f"the supervisor exited with {proc.returncode}: see {lay.log('supervisor')}"
            )
        current = status(lay.target, timeout_s=0.5)
        # healthy includes the gateway's own view: a drill's baseline starts with every
        # replica in rotation, not with one still waiting for its next health check
        if current.healthy and _gateway_sees_all(lay):
            return current
        if time.monotonic() >= deadline:
            bad = [s for s in current.services if s.state != "running" or s.healthy is False]
            names = ", ".join(f"{s.name} ({s.state}, {s.detail or 'unhealthy'})" for s in bad)
            raise ToolFailed(
                f"the stack was not healthy after {timeout_s:g} s: {names}; logs in {lay.logs}"
            )
        time.sleep(0.1)


def _gateway_sees_all(lay: Layout) -> bool:
    url = f"http://{lay.config.gateway.connect}/gateway/status"
    try:
        with urllib.request.urlopen(url, timeout=0.5) as resp:
            view = json.loads(resp.read())
    except (OSError, ValueError):
        return False
    return all(u.get("healthy") for u in view.get("upstreams", []))


def _signal_and_wait(pid: int, sig: int, grace_s: float) -> None:
    """Send ``sig`` (and SIGCONT, so a frozen process can act on it), then SIGKILL if needed."""
    try:
        os.kill(pid, sig)
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if proc_state(pid) in (None, "Z", "X"):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(100):
        if proc_state(pid) in (None, "Z", "X"):
            return
        time.sleep(0.05)


def _stop_leftovers(lay: Layout) -> list[str]:
    """Stop services whose pidfile names a live process (e.g. after the supervisor died)."""
    stopped = []
    for name in lay.services():
        if name == "supervisor":
            continue
        pid = live_pid(lay.pidfile(name))
        if pid is not None:
            sig = signal.SIGINT if name == "database" else signal.SIGTERM
            _signal_and_wait(pid, sig, 8.0)
            stopped.append(name)
        lay.pidfile(name).unlink(missing_ok=True)
    return stopped


def down(target: LoadedTarget | str | Path) -> list[str]:
    """Stop every process of the stack by pidfile (start times checked); idempotent.

    Returns the services that were running.
    """
    lay = _layout(target)
    stopped = []
    sup = live_pid(lay.pidfile("supervisor"))
    was_running = {n for n in lay.services() if live_pid(lay.pidfile(n)) is not None}
    if sup is not None:
        _signal_and_wait(sup, signal.SIGTERM, 12.0)
        stopped.append("supervisor")
    lay.pidfile("supervisor").unlink(missing_ok=True)
    stopped += _stop_leftovers(lay)
    for pid, proc in list(_STARTED.items()):
        if proc.poll() is not None:
            del _STARTED[pid]
    return [n for n in lay.services() if n in was_running or n in stopped]


# --- a target file for tests and demos ------------------------------------------------------


def write_target(
    folder: str | Path,
    *,
    store: Literal["sqlite", "postgres"] = "sqlite",
    name: str | None = None,
    restart_delay: str = "1s",
    seed: int = 42,
    ports: dict[str, int] | None = None,
    run_dir: str = "run",
    via: dict[str, str] | None = None,
) -> Path:
    """Write a ward EHR target file into ``folder`` with free ports (or ``ports``).

    ``via`` maps a service (gateway, replica-a, replica-b, database) to the address its
    clients use instead of its listen address: a proxy in that hop.
    """
    import yaml

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ports = dict(ports or {})
    for key in ("gateway", "replica-a", "replica-b", "database"):
        ports.setdefault(key, free_port())
    doc = target_document(
        store=store,
        name=name or f"ward-ehr-{store}",
        restart_delay=restart_delay,
        seed=seed,
        ports=ports,
        run_dir=run_dir,
        via=via,
    )
    path = folder / ("target.yaml" if store == "sqlite" else "target-postgres.yaml")
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def target_document(
    *,
    store: str,
    name: str,
    restart_delay: str,
    seed: int,
    ports: dict[str, int],
    run_dir: str,
    via: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The target document :func:`write_target` writes (the same shape as targets/ward-ehr).

    Like the bundled targets it declares an ``identity:``: before injecting, the runner asks
    the gateway for its CapabilityStatement and refuses a system whose ``software.name`` is
    not the ward EHR's.
    """
    from wardehr.fhir import capability_statement

    via = via or {}

    def addr(key: str) -> str:
        return f"127.0.0.1:{ports[key]}"

    def client(key: str) -> str:
        return via.get(key, addr(key))

    def hop(key: str) -> dict[str, str]:
        return {"listen": addr(key), **({"address": via[key]} if key in via else {})}

    services: dict[str, Any] = {}
    if store == "postgres":
        services["database"] = {
            "address": client("database"),
            "process": {"pidfile": "pids/database.pid"},
            "recovery": "supervisor",
        }
    for key in ("replica-a", "replica-b", "gateway", "supervisor"):
        services[key] = {
            "process": {"pidfile": f"pids/{key}.pid"},
            "recovery": "supervisor" if key != "supervisor" else "none",
        }
        if key != "supervisor":
            services[key] = {"address": client(key), **services[key]}
    probes: list[dict[str, Any]] = [
        {
            "name": "gateway",
            "role": "clinical",
            "service": "gateway",
            "http": {"url": f"http://{client('gateway')}/healthz"},
            "interval": "100ms",
            "timeout": "1s",
        },
        {
            "name": "replica-a",
            "service": "replica-a",
            "http": {"url": f"http://{addr('replica-a')}/healthz"},
        },
        {
            "name": "replica-b",
            "service": "replica-b",
            "http": {"url": f"http://{addr('replica-b')}/healthz"},
        },
    ]
    if store == "postgres":
        probes.append(
            {
                "name": "database",
                "service": "database",
                "tcp": {"host": "127.0.0.1", "port": ports["database"]},
            }
        )
    database: dict[str, Any] = hop("database") if store == "postgres" else {"path": "ward.sqlite"}
    return {
        "apiVersion": "resildrill/v1",
        "kind": "Target",
        "name": name,
        "description": f"the bundled ward EHR ({store}), synthetic data only",
        "environment": "staging",
        "identity": {
            "url": f"http://{client('gateway')}/metadata",
            "fhir_software": capability_statement("")["software"]["name"],
        },
        "run_dir": run_dir,
        "services": services,
        "probes": probes,
        "stack": {
            "kind": "ward-ehr",
            "store": store,
            "seed": seed,
            "restart_delay": restart_delay,
            "gateway": hop("gateway"),
            "replicas": {"replica-a": hop("replica-a"), "replica-b": hop("replica-b")},
            "database": database,
        },
    }


def pidfile_of(target: LoadedTarget | str | Path, service: str) -> Path:
    """The pidfile of ``service`` (tests and the demo signal processes through it)."""
    return _layout(target).pidfile(service)


def config_of(target: LoadedTarget | str | Path) -> StackConfig:
    """The validated ``stack:`` settings of a target (timings the tests reason about)."""
    return _layout(target).config


def run_dir_of(target: LoadedTarget | str | Path) -> Path:
    """The run folder of a target."""
    return _layout(target).run_dir


def read_pid(target: LoadedTarget | str | Path, service: str) -> int | None:
    """The pid in a service's pidfile (unverified), or None."""
    entry = read_pidfile(pidfile_of(target, service))
    return None if entry is None else entry[0]
