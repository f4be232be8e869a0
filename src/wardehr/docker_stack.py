"""The ward EHR as containers: its image, and ``target up|down|status`` for a container target.

Owns the translation of a ``stack: {kind: ward-ehr-docker}`` target into containers on a
Docker engine (``DOCKER_HOST`` or the local socket), and the locally built image they run.
The same services as the process stack (two replicas and a gateway; Docker's restart policy
stands in for the supervisor), each a container with host networking bound to its 127.0.0.1
port, labelled as a compose project would label it (``com.docker.compose.project`` = the
target's ``project``, ``com.docker.compose.service`` = the service), so drills select them
by compose service with no compose binary::

    stack:
      kind: ward-ehr-docker
      project: ward-ehr-docker
      restart_policy: always          # always | unless-stopped | on-failure | no
      seed: 42
      gateway: {listen: 127.0.0.1:18180}
      replicas:
        replica-a: {listen: 127.0.0.1:18181}
        replica-b: {listen: 127.0.0.1:18182}
      database: {path: ward.sqlite}   # in run_dir, bind-mounted read-write

The image needs no registry: a ``FROM scratch`` skeleton (mount points and the merged-/usr
symlinks, a few hundred bytes) imported with ``docker import``, into which the host's
``/usr``, its Python and this installation of resildrill are bind-mounted read-only. On vfs
(which copies the whole image for every container) that makes a container cost nothing to
create. The skeleton tarball is cached outside git in ``$RESILDRILL_IMAGE_CACHE``
(default ``~/.cache/resildrill/images``) and the image is tagged with the hash of its
contents, so it is built once per engine.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from resildrill.drill.loader import LoadedTarget, load_target
from resildrill.drill.model import Duration
from resildrill.errors import InvalidInput, ToolFailed
from resildrill.faults.docker_engine import (
    COMPOSE_PROJECT,
    COMPOSE_SERVICE,
    client_for,
    engine_address,
    import_docker,
)
from wardehr.fhir import capability_statement
from wardehr.stack import Hop, ServiceStatus, StackStatus, http_ok

__all__ = [
    "IMAGE_REPO",
    "TARGET_LABEL",
    "DockerStackConfig",
    "down",
    "ensure_image",
    "host_binds",
    "is_docker_target",
    "status",
    "up",
    "write_target",
]

KIND = "ward-ehr-docker"
IMAGE_REPO = "resildrill/hostpy"
TARGET_LABEL = "org.resildrill.target"
#: Bumped when the skeleton changes, so a new image is built next to the old one.
SKELETON_VERSION = "1"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DockerStackConfig(_Model):
    """The ``stack:`` settings of a containerised ward EHR target."""

    kind: Literal["ward-ehr-docker"]
    project: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="compose project label")
    restart_policy: Literal["always", "unless-stopped", "on-failure", "no"] = "always"
    seed: int = 42
    beds_per_ward: int = Field(default=12, ge=1, le=200)
    upstream_timeout: Duration = 2.0
    health_interval: Duration = 0.5
    health_timeout: Duration = 0.5
    gateway: Hop
    replicas: dict[str, Hop] = Field(min_length=1)
    database: dict[str, str] = Field(default_factory=lambda: {"path": "ward.sqlite"})


# --- the image ---------------------------------------------------------------------------------


def image_cache_dir() -> Path:
    """Where skeleton tarballs are kept (outside git)."""
    default = Path.home() / ".cache" / "resildrill" / "images"
    return Path(os.environ.get("RESILDRILL_IMAGE_CACHE") or default)


def _skeleton_tar() -> bytes:
    """A reproducible tarball: mount points, merged-/usr symlinks, a passwd for ``root``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:

        def add(
            name: str, *, kind: bytes = tarfile.DIRTYPE, data: bytes = b"", link: str = ""
        ) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mtime, info.mode = kind, 0, 0o755 if kind != tarfile.REGTYPE else 0o644
            info.linkname, info.size = link, len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        for d in ("usr", "etc", "tmp", "proc", "sys", "dev", "root", "run", "var", "work"):
            add(d)
        for name in ("bin", "lib", "lib64", "sbin"):
            add(name, kind=tarfile.SYMTYPE, link=f"usr/{name}")
        add("etc/passwd", kind=tarfile.REGTYPE, data=b"root:x:0:0:root:/root:/bin/sh\n")
        add("etc/group", kind=tarfile.REGTYPE, data=b"root:x:0:\n")
    return buf.getvalue()


def ensure_image(client: Any) -> str:
    """The skeleton image's tag, importing it into the engine if it is not there yet."""
    data = _skeleton_tar()
    digest = hashlib.sha256(SKELETON_VERSION.encode() + data).hexdigest()[:12]
    tag = f"{IMAGE_REPO}:{digest}"
    docker = import_docker()
    try:
        client.api.inspect_image(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    cache = image_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"hostpy-{digest}.tar"
    if not tarball.exists():
        tmp = tarball.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, tarball)
    client.api.import_image_from_file(
        str(tarball),
        repository=IMAGE_REPO,
        tag=digest,
        changes=['LABEL org.resildrill.image="host-python skeleton"'],
    )
    return tag


def host_binds() -> list[str]:
    """Read-only bind mounts that give the skeleton this host's Python, this package and
    the resildrill package it reads target files with."""
    import importlib.util

    import wardehr

    wanted = [Path("/usr"), Path(sys.base_prefix), Path(sys.prefix)]
    wanted.append(Path(wardehr.__file__).resolve().parents[1])
    spec = importlib.util.find_spec("resildrill")  # located, not imported by name here
    if spec is not None and spec.origin is not None:
        wanted.append(Path(spec.origin).resolve().parents[1])
    paths: list[Path] = []
    for p in sorted({w.resolve() for w in wanted}, key=lambda x: len(x.parts)):
        if not any(p == q or q in p.parents for q in paths):
            paths.append(p)
    return [f"{p}:{p}:ro" for p in paths]


# --- the stack ---------------------------------------------------------------------------------


def is_docker_target(path: str | Path) -> bool:
    """Whether a target file's stack is a container stack (cheap: no validation)."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return False
    stack = doc.get("stack") if isinstance(doc, dict) else None
    return isinstance(stack, dict) and stack.get("kind") == KIND


def _load(target: LoadedTarget | str | Path) -> tuple[LoadedTarget, DockerStackConfig, Path]:
    try:
        loaded = target if isinstance(target, LoadedTarget) else load_target(target)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise InvalidInput(f"{target}: {where}: {first['msg']}") from None
    try:
        config = DockerStackConfig.model_validate(loaded.spec.stack)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{loaded.path}: stack.{where}: {first['msg']}") from None
    run_dir = Path(loaded.spec.run_dir or f".state/{loaded.spec.name}")
    run_dir = run_dir if run_dir.is_absolute() else loaded.path.parent / run_dir
    return loaded, config, run_dir.resolve()


def _client() -> Any:
    client = client_for(engine_address(), timeout_s=30.0)
    try:
        client.ping()
    except Exception as exc:  # any transport error means the same thing here
        raise ToolFailed(f"no Docker engine at {engine_address()}: {exc}") from None
    return client


def _db_path(config: DockerStackConfig, run_dir: Path) -> Path:
    p = Path(config.database.get("path", "ward.sqlite"))
    return p if p.is_absolute() else run_dir / p


def _services(config: DockerStackConfig, run_dir: Path) -> dict[str, list[str]]:
    """Service name -> command line, replicas first (the gateway checks them)."""
    py = sys.executable
    db = str(_db_path(config, run_dir))
    plan: dict[str, list[str]] = {}
    for name, hop in config.replicas.items():
        plan[name] = [
            *(py, "-m", "wardehr.server", "--name", name, "--listen", hop.listen),
            *("--store", "sqlite", "--db", db, "--seed", str(config.seed)),
            *("--beds-per-ward", str(config.beds_per_ward)),
        ]
    plan["gateway"] = [
        *(py, "-m", "wardehr.gateway", "--listen", config.gateway.listen),
        *(f"--upstream={n}={h.connect}" for n, h in config.replicas.items()),
        *("--timeout", str(config.upstream_timeout)),
        *("--health-interval", str(config.health_interval)),
        *("--health-timeout", str(config.health_timeout)),
    ]
    return plan


def _address(config: DockerStackConfig, service: str) -> str:
    return config.gateway.connect if service == "gateway" else config.replicas[service].connect


def _containers(client: Any, target_name: str) -> dict[str, dict[str, Any]]:
    """This target's containers by service (summaries, stopped ones included)."""
    found = client.api.containers(all=True, filters={"label": f"{TARGET_LABEL}={target_name}"})
    return {c["Labels"].get(COMPOSE_SERVICE, c["Id"][:12]): c for c in found}


def _port_free(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, int(port)))
        except OSError:
            return False
    return True


def up(target: LoadedTarget | str | Path, *, timeout_s: float = 60.0) -> StackStatus:
    """Create and start the containers (idempotent) and wait until every service is healthy."""
    loaded, config, run_dir = _load(target)
    client = _client()
    image = ensure_image(client)
    existing = _containers(client, loaded.spec.name)
    plan = _services(config, run_dir)
    missing = [s for s in plan if existing.get(s, {}).get("State") != "running"]
    busy = [_address(config, s) for s in missing if not _port_free(_address(config, s))]
    if busy:
        raise ToolFailed(f"address already in use: {', '.join(busy)} (another stack running?)")
    run_dir.mkdir(parents=True, exist_ok=True)
    from wardehr.seed import population
    from wardehr.store import SqliteStore

    store = SqliteStore(str(_db_path(config, run_dir)))
    try:
        # created here, once, so the replicas never race to create the schema
        store.ensure_ready(population(config.seed, beds_per_ward=config.beds_per_ward))
    finally:
        store.close()
    binds = [*host_binds(), f"{run_dir}:{run_dir}:rw"]
    for service in missing:
        if service in existing:
            client.api.remove_container(existing[service]["Id"], force=True)
        host_config = client.api.create_host_config(
            network_mode="host",
            binds=binds,
            restart_policy={"Name": config.restart_policy},
        )
        created = client.api.create_container(
            image,
            command=plan[service],
            name=f"{config.project}-{service}",
            labels={
                COMPOSE_PROJECT: config.project,
                COMPOSE_SERVICE: service,
                TARGET_LABEL: loaded.spec.name,
            },
            environment={"PYTHONUNBUFFERED": "1"},
            working_dir=str(run_dir),
            stop_signal="SIGTERM",
            host_config=host_config,
        )
        client.api.start(created["Id"])
    return _wait_healthy(loaded, timeout_s)


def wait_healthy(
    read_status: Callable[[], StackStatus], timeout_s: float, what: str, hint: str
) -> StackStatus:
    """Poll ``read_status`` until every service is running and healthy, or raise after
    ``timeout_s`` naming the ones that are not (container stacks share it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        current = read_status()
        if current.healthy and current.services:
            return current
        if time.monotonic() >= deadline:
            bad = [s for s in current.services if s.state != "running" or s.healthy is False]
            names = ", ".join(f"{s.name} ({s.state}, {s.detail or 'unhealthy'})" for s in bad)
            raise ToolFailed(f"{what} was not healthy after {timeout_s:g} s: {names}{hint}")
        time.sleep(0.2)


def _wait_healthy(loaded: LoadedTarget, timeout_s: float) -> StackStatus:
    return wait_healthy(
        lambda: status(loaded), timeout_s, "the stack", "; see 'docker logs <container>'"
    )


def status(target: LoadedTarget | str | Path, *, timeout_s: float = 0.5) -> StackStatus:
    """Each service's container: main pid, state, restart count and health check."""
    loaded, config, run_dir = _load(target)
    client = _client()
    existing = _containers(client, loaded.spec.name)
    out = StackStatus(loaded.spec.name, run_dir)
    for service in _services(config, run_dir):
        address = _address(config, service)
        summary = existing.get(service)
        if summary is None:
            out.services.append(ServiceStatus(service, None, "stopped", False, address, None))
            continue
        attrs = client.api.inspect_container(summary["Id"])
        state = attrs["State"]
        name = "frozen" if state.get("Paused") else "running" if state.get("Running") else "stopped"
        healthy, detail = http_ok(f"http://{address}/healthz", timeout_s)
        out.services.append(
            ServiceStatus(
                service,
                int(state.get("Pid") or 0) or None,
                name,
                healthy,
                address,
                int(attrs.get("RestartCount") or 0),
                f"{detail}; container {attrs['Name'].lstrip('/')}",
            )
        )
    return out


def down(target: LoadedTarget | str | Path) -> list[str]:
    """Remove every container of the target (by id; idempotent). Returns the services."""
    loaded, _config, _run_dir = _load(target)
    client = _client()
    removed = []
    for service, summary in sorted(_containers(client, loaded.spec.name).items()):
        client.api.remove_container(summary["Id"], force=True)
        removed.append(service)
    return removed


# --- a target file for tests and demos ---------------------------------------------------------


def write_target(
    folder: str | Path,
    *,
    ports: dict[str, int],
    name: str = "ward-ehr-docker",
    project: str | None = None,
    restart_policy: str = "always",
    run_dir: str = "run",
) -> Path:
    """Write a containerised ward EHR target into ``folder`` (ports: gateway, replica-a/b)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def addr(key: str) -> str:
        return f"127.0.0.1:{ports[key]}"

    services = {
        key: {"address": addr(key), "recovery": "supervisor"}
        for key in ("replica-a", "replica-b", "gateway")
    }
    doc = {
        "apiVersion": "resildrill/v1",
        "kind": "Target",
        "name": name,
        "description": "the bundled ward EHR as containers (sqlite), synthetic data only",
        "environment": "staging",
        # asked before any injection: the address really is this ward EHR (runner/safety.py)
        "identity": {
            "url": f"http://{addr('gateway')}/metadata",
            "fhir_software": capability_statement("")["software"]["name"],
        },
        "run_dir": run_dir,
        "services": services,
        "probes": [
            {
                "name": "gateway",
                "role": "clinical",
                "service": "gateway",
                "http": {"url": f"http://{addr('gateway')}/healthz"},
                "interval": "100ms",
                "timeout": "1s",
            },
            *(
                {"name": key, "service": key, "http": {"url": f"http://{addr(key)}/healthz"}}
                for key in ("replica-a", "replica-b")
            ),
        ],
        "stack": {
            "kind": KIND,
            "project": project or name,
            "restart_policy": restart_policy,
            "seed": 42,
            "gateway": {"listen": addr("gateway")},
            "replicas": {k: {"listen": addr(k)} for k in ("replica-a", "replica-b")},
            "database": {"path": "ward.sqlite"},
        },
    }
    path = folder / "target.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
