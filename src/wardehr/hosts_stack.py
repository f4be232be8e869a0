"""The ward EHR spread over hosts of an estate, each reached over real SSH: ``target up|down``.

Owns ``stack: {kind: ward-ehr-hosts}``: one container per host (gateway, replica-a,
replica-b, database), each with its own PID namespace, host networking, the label
``resildrill.host=<host>`` and Debian's OpenSSH server (``/usr/sbin/sshd`` from this
machine's ``/usr``, bind-mounted like the rest of the image, see :mod:`wardehr.docker_stack`)
listening on its own 127.0.0.1 port. Inside each host the ward EHR's own supervisor is
PID 1: it runs sshd and the host's service and restarts a killed one, as systemd would on a
VM. The database host holds the store's filesystem: a size-limited tmpfs volume mounted at
``/var/lib/wardehr`` on the database and replica hosts (so filling the database host's disk
makes the replicas' writes fail, as a full database volume does)::

    stack:
      kind: ward-ehr-hosts
      project: ward-ehr-hosts
      data_size_mib: 48
      gateway:   {listen: 127.0.0.1:18380, ssh: 127.0.0.1:18390}
      replicas:
        replica-a: {listen: 127.0.0.1:18381, ssh: 127.0.0.1:18391}
        replica-b: {listen: 127.0.0.1:18382, ssh: 127.0.0.1:18392}
      database:  {ssh: 127.0.0.1:18393}

``target up`` generates, under the target's run folder (``ssh/``), a client key, one host
key per host, and the ``known_hosts`` file the target's ``hosts:`` point at: keys are
created once and kept across ``up``/``down``, so the known_hosts stays true. The hosts log
in ``root`` by key only (password and keyboard-interactive off, no forwarding).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from resildrill.drill.loader import LoadedTarget, load_target
from resildrill.errors import InvalidInput, ToolFailed
from resildrill.faults.docker_engine import COMPOSE_PROJECT, COMPOSE_SERVICE, import_docker
from wardehr.docker_stack import (
    TARGET_LABEL,
    _client,
    _port_free,
    ensure_image,
    host_binds,
    wait_healthy,
)
from wardehr.fhir import capability_statement
from wardehr.stack import ServiceStatus, StackStatus, http_ok

__all__ = ["HOST_LABEL", "down", "status", "up", "write_target"]

KIND = "ward-ehr-hosts"
HOST_LABEL = "resildrill.host"
DATA_DIR = "/var/lib/wardehr"
#: Inside each host: the supervisor's plan, the services' pidfiles and logs.
SRV = "/srv/host"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HostHop(_Model):
    listen: str | None = None
    ssh: str


class HostsStackConfig(_Model):
    kind: Literal["ward-ehr-hosts"]
    project: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    seed: int = 42
    beds_per_ward: int = Field(default=12, ge=1, le=200)
    data_size_mib: int = Field(default=48, ge=8, le=4096)
    restart_delay: float = 0.5
    gateway: HostHop
    replicas: dict[str, HostHop] = Field(min_length=1)
    database: HostHop

    def hosts(self) -> dict[str, HostHop]:
        return {"gateway": self.gateway, **self.replicas, "database": self.database}


def _load(target: LoadedTarget | str | Path) -> tuple[LoadedTarget, HostsStackConfig, Path]:
    loaded = target if isinstance(target, LoadedTarget) else load_target(target)
    try:
        config = HostsStackConfig.model_validate(loaded.spec.stack)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{loaded.path}: stack.{where}: {first['msg']}") from None
    run_dir = Path(loaded.spec.run_dir or f".state/{loaded.spec.name}")
    run_dir = run_dir if run_dir.is_absolute() else loaded.path.parent / run_dir
    return loaded, config, run_dir.resolve()


# --- keys --------------------------------------------------------------------------------------


def _keygen(path: Path, comment: str) -> None:
    if not path.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            check=True,
            capture_output=True,
            timeout=30,
        )


def ensure_keys(ssh_addresses: dict[str, str], run_dir: Path) -> Path:
    """The client key, each host's key, and a known_hosts naming each host at its port."""
    ssh_dir = run_dir / "ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _keygen(ssh_dir / "id_ed25519", "resildrill-drills")
    lines = []
    for name, ssh in ssh_addresses.items():
        host_dir = ssh_dir / "hosts" / name
        host_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _keygen(host_dir / "ssh_host_ed25519_key", f"{name}-host-key")
        addr, port = ssh.rsplit(":", 1)
        pub = (host_dir / "ssh_host_ed25519_key.pub").read_text().split()
        lines.append(f"[{addr}]:{port} {pub[0]} {pub[1]}\n")
    known = ssh_dir / "known_hosts"
    known.write_text("".join(lines))
    return ssh_dir


def host_files(
    name: str,
    ssh: str,
    run_dir: Path,
    ssh_dir: Path,
    *,
    service: list[str] | None = None,
    livez: str | None = None,
    restart_delay: float = 0.5,
) -> Path:
    """A host's /etc files and supervisor plan (sshd, and ``service`` if any), under
    run_dir/hosts/<name>."""
    root = run_dir / "hosts" / name
    etc_ssh, srv = root / "etc" / "ssh", root / "srv"
    for d in (etc_ssh, srv):
        d.mkdir(parents=True, exist_ok=True)
    addr, port = ssh.rsplit(":", 1)
    (etc_ssh / "sshd_config").write_text(
        "\n".join(
            [
                f"Port {port}",
                f"ListenAddress {addr}",
                "HostKey /etc/ssh/ssh_host_ed25519_key",
                "AuthorizedKeysFile /etc/ssh/authorized_keys",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "AllowTcpForwarding no",
                "AllowAgentForwarding no",
                "X11Forwarding no",
                "PermitTunnel no",
                "PidFile none",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    key_src = ssh_dir / "hosts" / name / "ssh_host_ed25519_key"
    (etc_ssh / "ssh_host_ed25519_key").write_bytes(key_src.read_bytes())
    (etc_ssh / "ssh_host_ed25519_key").chmod(0o600)
    (etc_ssh / "authorized_keys").write_text((ssh_dir / "id_ed25519.pub").read_text())
    (etc_ssh / "authorized_keys").chmod(0o600)
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n"
    )
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    children: list[dict[str, Any]] = [
        {
            "name": "sshd",
            "argv": ["/bin/sh", "-c", "mkdir -p -m 0755 /run/sshd && exec /usr/sbin/sshd -D -e"],
            "pidfile": f"{SRV}/sshd.pid",
            "log": f"{SRV}/sshd.log",
        }
    ]
    if service is not None:
        children.append(
            {
                "name": name,
                "argv": service,
                "pidfile": f"{SRV}/{name}.pid",
                "log": f"{SRV}/{name}.log",
                "livez": livez,
            }
        )
    plan = {
        "pidfile": f"{SRV}/supervisor.pid",
        "status_file": f"{SRV}/supervisor.json",
        "restart_delay_s": restart_delay,
        "liveness_interval_s": 1.0,
        "liveness_failures": 3,
        "children": children,
    }
    (srv / "plan.json").write_text(json.dumps(plan, indent=2))
    return root


def _service_argv(name: str, config: HostsStackConfig) -> list[str] | None:
    py = sys.executable
    if name in config.replicas:
        hop = config.replicas[name]
        return [
            *(py, "-m", "wardehr.server", "--name", name, "--listen", str(hop.listen)),
            *("--store", "sqlite", "--db", f"{DATA_DIR}/ward.sqlite", "--seed", str(config.seed)),
            *("--beds-per-ward", str(config.beds_per_ward)),
        ]
    if name == "gateway":
        return [
            *(py, "-m", "wardehr.gateway", "--listen", str(config.gateway.listen)),
            *(f"--upstream={n}={h.listen}" for n, h in config.replicas.items()),
            *("--timeout", "2.0", "--health-interval", "0.5", "--health-timeout", "0.5"),
        ]
    return None


# --- the stack ---------------------------------------------------------------------------------


def _containers(client: Any, target_name: str) -> dict[str, dict[str, Any]]:
    found = client.api.containers(all=True, filters={"label": f"{TARGET_LABEL}={target_name}"})
    return {c["Labels"].get(HOST_LABEL, c["Id"][:12]): c for c in found}


def _volume(client: Any, config: HostsStackConfig) -> str:
    docker = import_docker()
    name = f"{config.project}-data"
    try:
        client.api.inspect_volume(name)
    except docker.errors.NotFound:
        client.api.create_volume(
            name,
            driver="local",
            driver_opts={"type": "tmpfs", "device": "tmpfs", "o": f"size={config.data_size_mib}m"},
            labels={TARGET_LABEL: config.project},
        )
    return name


def up(target: LoadedTarget | str | Path, *, timeout_s: float = 60.0) -> StackStatus:
    """Create and start every host (idempotent) and wait until each answers."""
    loaded, config, run_dir = _load(target)
    client = _client()
    image = ensure_image(client)
    existing = _containers(client, loaded.spec.name)
    hosts = config.hosts()
    missing = [h for h in hosts if existing.get(h, {}).get("State") != "running"]
    busy = [
        a
        for h in missing
        for a in (hosts[h].ssh, hosts[h].listen)
        if a is not None and not _port_free(a)
    ]
    if busy:
        raise ToolFailed(f"address already in use: {', '.join(busy)} (another stack running?)")
    ssh_dir = ensure_keys({h: hop.ssh for h, hop in hosts.items()}, run_dir)
    volume = _volume(client, config)
    order = ["database", *config.replicas, "gateway"]  # the store exists before its users
    for name in [h for h in order if h in missing]:
        if name in existing:
            client.api.remove_container(existing[name]["Id"], force=True)
        hop = hosts[name]
        root = host_files(
            name, hop.ssh, run_dir, ssh_dir,
            service=_service_argv(name, config),
            livez=f"http://{hop.listen}/livez" if hop.listen else None,
            restart_delay=config.restart_delay,
        )  # fmt: skip
        created = start_host(
            client, image, name, root,
            project=config.project, target=loaded.spec.name,
            extra_binds=[] if name == "gateway" else [f"{volume}:{DATA_DIR}:rw"],
        )  # fmt: skip
        if name == "database":
            _create_store(client, created["Id"], config)
    return _wait_healthy(loaded, timeout_s)


def start_host(
    client: Any,
    image: str,
    name: str,
    root: Path,
    *,
    project: str,
    target: str,
    extra_binds: list[str] | None = None,
) -> dict[str, Any]:
    """One host: a container (own PID namespace, host network) labelled resildrill.host."""
    binds = [
        *host_binds(),
        f"{root / 'etc' / 'ssh'}:/etc/ssh:ro",
        f"{root / 'etc' / 'passwd'}:/etc/passwd:ro",
        f"{root / 'etc' / 'group'}:/etc/group:ro",
        f"{root / 'srv'}:{SRV}:rw",
        *(extra_binds or []),
    ]
    host_config = client.api.create_host_config(
        network_mode="host", binds=binds, tmpfs={"/run": "", "/tmp": ""},
        restart_policy={"Name": "no"},
    )  # fmt: skip
    created: dict[str, Any] = client.api.create_container(
        image,
        # tini (Docker's own docker-init, from /usr) as PID 1 reaps orphans, as init does
        # on a VM: a guard that ended leaves no zombie behind
        command=[
            *("/usr/bin/docker-init", "--", sys.executable),
            *("-m", "wardehr.supervisor", "--plan", f"{SRV}/plan.json"),
        ],
        name=f"{project}-{name}",
        hostname=name,
        labels={
            HOST_LABEL: name,
            COMPOSE_PROJECT: project,
            COMPOSE_SERVICE: name,
            TARGET_LABEL: target,
        },
        environment={"PYTHONUNBUFFERED": "1", "HOME": "/root"},
        working_dir="/root",
        stop_signal="SIGTERM",
        host_config=host_config,
    )
    client.api.start(created["Id"])
    return created


def _create_store(client: Any, container: str, config: HostsStackConfig) -> None:
    """Seed the store on the database host once, so the replicas never race to create it."""
    code = (
        "import sys; from wardehr.seed import population; from wardehr.store import SqliteStore\n"
        f"s = SqliteStore({DATA_DIR + '/ward.sqlite'!r})\n"
        f"s.ensure_ready(population({config.seed}, beds_per_ward={config.beds_per_ward}))\n"
        "s.close()\n"
    )
    run = client.api.exec_create(container, [sys.executable, "-c", code])
    out = client.api.exec_start(run["Id"])
    if client.api.exec_inspect(run["Id"]).get("ExitCode") != 0:
        raise ToolFailed(f"could not create the store on the database host: {out[-300:]!r}")


def _wait_healthy(loaded: LoadedTarget, timeout_s: float) -> StackStatus:
    return wait_healthy(lambda: status(loaded), timeout_s, "the estate", "")


def _ssh_answers(address: str, timeout_s: float) -> tuple[bool, str]:
    import socket

    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout_s) as s:
            s.settimeout(timeout_s)
            banner = s.recv(64)
    except OSError as exc:
        return False, f"ssh {address}: {exc.strerror or exc}"
    ok = banner.startswith(b"SSH-2.0-")
    return ok, f"ssh {address}: {banner.decode(errors='replace').strip() or 'no banner'}"


def status(target: LoadedTarget | str | Path, *, timeout_s: float = 0.5) -> StackStatus:
    """Each host: its container, its sshd banner and its service's health."""
    loaded, config, run_dir = _load(target)
    client = _client()
    existing = _containers(client, loaded.spec.name)
    out = StackStatus(loaded.spec.name, run_dir)
    out.files = {
        "ssh keys, known_hosts": run_dir / "ssh",
        "each host's sshd config and logs": run_dir / "hosts",
    }
    for name, hop in config.hosts().items():
        summary = existing.get(name)
        address = hop.listen or hop.ssh
        if summary is None:
            out.services.append(ServiceStatus(name, None, "stopped", False, address, None))
            continue
        attrs = client.api.inspect_container(summary["Id"])
        running = attrs["State"].get("Running")
        ok, detail = _ssh_answers(hop.ssh, max(timeout_s, 1.0))
        if ok and hop.listen is not None:
            ok, detail = http_ok(f"http://{hop.listen}/healthz", timeout_s)
        out.services.append(
            ServiceStatus(
                name,
                int(attrs["State"].get("Pid") or 0) or None,
                "running" if running else "stopped",
                ok,
                address,
                None,
                f"{detail}; container {attrs['Name'].lstrip('/')}",
            )
        )
    return out


def down(target: LoadedTarget | str | Path) -> list[str]:
    """Remove the hosts' containers and the data volume (by id; idempotent)."""
    loaded, config, _run_dir = _load(target)
    client = _client()
    removed = []
    for name, summary in sorted(_containers(client, loaded.spec.name).items()):
        client.api.remove_container(summary["Id"], force=True)
        removed.append(name)
    docker = import_docker()
    with contextlib.suppress(docker.errors.NotFound):
        client.api.remove_volume(f"{config.project}-data", force=True)
    return removed


# --- a target file for tests and demos ---------------------------------------------------------


def target_document(
    ports: dict[str, int], *, name: str = "ward-ehr-hosts", run_dir: str = "run"
) -> dict[str, Any]:
    """A ward-EHR-over-hosts target; ports: gateway, replica-a, replica-b (HTTP) and
    ssh-gateway, ssh-replica-a, ssh-replica-b, ssh-database."""

    def addr(key: str) -> str:
        return f"127.0.0.1:{ports[key]}"

    ssh = f"{run_dir}/ssh"
    hosts = {
        h: {
            "address": "127.0.0.1",
            "port": ports[f"ssh-{h}"],
            "user": "root",
            "key_file": f"{ssh}/id_ed25519",
            "known_hosts": f"{ssh}/known_hosts",
            # the database host's data filesystem is a 48 MiB scratch volume: a drill may
            # fill it to the last byte; every other host keeps 2 MiB free whatever a drill says
            "min_free_disk_mib": 0 if h == "database" else 2,
        }
        for h in ("gateway", "replica-a", "replica-b", "database")
    }
    services = {
        key: {
            "address": addr(key),
            "host": key,
            "process": {"pidfile": f"{SRV}/{key}.pid"},
            "recovery": "supervisor",
        }
        for key in ("replica-a", "replica-b", "gateway")
    }
    return {
        "apiVersion": "resildrill/v1",
        "kind": "Target",
        "name": name,
        "description": "the bundled ward EHR over four SSH hosts (containers), synthetic data only",
        "environment": "staging",
        "identity": {
            "url": f"http://{addr('gateway')}/metadata",
            "fhir_software": capability_statement("")["software"]["name"],
        },
        "run_dir": run_dir,
        "hosts": hosts,
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
            "project": name,
            "seed": 42,
            "data_size_mib": 48,
            "gateway": {"listen": addr("gateway"), "ssh": addr("ssh-gateway")},
            "replicas": {
                k: {"listen": addr(k), "ssh": addr(f"ssh-{k}")} for k in ("replica-a", "replica-b")
            },
            "database": {"ssh": addr("ssh-database")},
        },
    }


def write_target(folder: str | Path, *, ports: dict[str, int], **kw: Any) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "target.yaml"
    path.write_text(yaml.safe_dump(target_document(ports, **kw), sort_keys=False))
    return path
