"""Helpers of the remote-host tests: the estate of SSH hosts, and the inspector inside a host.

The inspector is ``docker exec`` through the command line, reading the host's own /proc, df
and memory figures: never the runner's journal, the guard's answers or our SSH client.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wardehr.stack import free_port

HOSTS = ("gateway", "replica-a", "replica-b", "database")


def estate_ports() -> dict[str, int]:
    keys = ["gateway", "replica-a", "replica-b", *(f"ssh-{h}" for h in HOSTS)]
    return {k: free_port() for k in keys}


@dataclass
class Estate:
    """A running ward EHR over four SSH hosts, written into ``folder``."""

    folder: Path
    target: Path
    name: str
    ports: dict[str, int]

    def container(self, host: str) -> str:
        return f"{self.name}-{host}"

    def sh(self, host: str, script: str, timeout: float = 20.0) -> str:
        """Run a shell script inside the host (the inspector), its stdout."""
        out = subprocess.run(
            ["docker", "exec", self.container(host), "/bin/sh", "-c", script],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode != 0:
            raise AssertionError(f"inspector on {host} failed: {out.stderr.strip()}")
        return out.stdout

    def state_of(self, host: str, pid: int) -> str | None:
        """The one-letter state of a pid inside the host, None if gone."""
        text = self.sh(host, f"cat /proc/{pid}/stat 2>/dev/null || true")
        if not text:
            return None
        return text[text.rfind(")") + 2 :].split()[0]

    def pidfile_pid(self, host: str, service: str) -> int:
        """The pid a service's pidfile names in the host (0 while it is being restarted)."""
        text = self.sh(host, f"cat /srv/host/{service}.pid 2>/dev/null || echo 0")
        return int(text.split()[0])

    def pids_matching(self, host: str, needle: str) -> list[int]:
        """Pids in the host whose command line contains ``needle`` (the inspector's own scan)."""
        code = (
            "import os,sys\n"
            "for d in os.listdir('/proc'):\n"
            "    if d.isdigit():\n"
            "        try: c=open('/proc/'+d+'/cmdline','rb').read().replace(b'\\0',b' ')\n"
            "        except OSError: continue\n"
            "        if sys.argv[1].encode() in c and b'import os,sys' not in c: print(d)\n"
        )
        script = f"/usr/bin/python3 -c {shlex.quote(code)} {shlex.quote(needle)}"
        return [int(x) for x in self.sh(host, script).split()]

    def df_used_pct(self, host: str, path: str) -> float:
        line = self.sh(host, f"df -P {path} | tail -1").split()
        return 100.0 * int(line[2]) / int(line[1])

    def rss_mib(self, host: str, pid: int) -> float:
        status = self.sh(host, f"cat /proc/{pid}/status")
        kib = next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS:"))
        return kib / 1024


def up_estate(folder: Path, name: str) -> Estate:
    from wardehr.hosts_stack import up, write_target

    ports = estate_ports()
    target = write_target(folder, ports=ports, name=name, run_dir="run")
    up(target, timeout_s=60)
    return Estate(folder, target, name, ports)


def down_estate(estate: Estate) -> None:
    from wardehr.hosts_stack import down

    down(estate.target)


def wait_for(check: Callable[[], bool], timeout: float, step: float = 0.02) -> float | None:
    """Seconds until ``check()`` holds (polled), or None."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(step)
    return None


def write_yaml(path: Path, doc: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def drill_doc(name: str, faults: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "resildrill/v1",
        "kind": "Drill",
        "name": name,
        "target": "target.yaml",
        "slos": [{"probe": "gateway", "expect": "success_rate >= 0.9"}],
        "slo_window": "500ms",
        "stability_window": "1s",
        "phases": {"baseline": "1s", "recovery": "2s"},
        "faults": faults,
        "gates": {"all_faults_recovered": False},
    }
    doc.update(extra)
    return doc


def poller(estate: Estate, host: str, script: str, out: Path) -> subprocess.Popen[bytes]:
    """A poller inside the host: prints ``<monotonic> <script output>`` every 10 ms (the
    monotonic clock is the machine's own, shared with the test through the kernel)."""
    loop = (
        "import subprocess, sys, time\n"
        # forever, and no w-h-i-l-e loop in its own command line for a CPU-hog inspector to see
        "for _ in iter(int, 1):\n"
        f"    r = subprocess.run(['/bin/sh', '-c', {script!r}], capture_output=True, text=True)\n"
        "    print(time.monotonic(), r.stdout.strip(), flush=True)\n"
        "    time.sleep(0.01)\n"
    )
    with out.open("wb") as sink:  # the child has its own copy of the descriptor
        return subprocess.Popen(
            ["docker", "exec", estate.container(host), "/usr/bin/python3", "-c", loop],
            stdout=sink,
            stderr=subprocess.DEVNULL,
        )


def read_poll(out: Path) -> list[tuple[float, str]]:
    rows = []
    for line in out.read_text().splitlines():
        t, _, value = line.partition(" ")
        try:
            rows.append((float(t), value))
        except ValueError:
            continue
    return rows


def report_of(reports: Path) -> dict[str, Any]:
    runs = sorted(reports.glob("*/report.json"))
    assert runs, f"no report under {reports}"
    return dict(json.loads(runs[-1].read_text()))


ENV = {**os.environ, "NO_COLOR": "1"}


# --- an estate of bare hosts (sshd only) for fan-out ---------------------------------------


@dataclass
class BareHosts:
    folder: Path
    target: Path
    project: str
    names: list[str]

    def container(self, host: str) -> str:
        return f"{self.project}-{host}"

    def sh(self, host: str, script: str) -> str:
        out = subprocess.run(
            ["docker", "exec", self.container(host), "/bin/sh", "-c", script],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout


def up_bare_hosts(folder: Path, project: str, n: int) -> BareHosts:
    """``n`` SSH hosts (containers running only sshd) and a target naming them all."""
    import docker

    from wardehr.docker_stack import ensure_image
    from wardehr.hosts_stack import ensure_keys, host_files, start_host

    names = [f"h{i:02d}" for i in range(1, n + 1)]
    ssh = {h: f"127.0.0.1:{free_port()}" for h in names}
    run_dir = folder / "run"
    ssh_dir = ensure_keys(ssh, run_dir)
    client = docker.from_env(timeout=60)
    image = ensure_image(client)
    for h in names:
        root = host_files(h, ssh[h], run_dir, ssh_dir)
        start_host(client, image, h, root, project=project, target=project)
    doc = {
        "apiVersion": "resildrill/v1",
        "kind": "Target",
        "name": project,
        "environment": "test",
        "run_dir": "run",
        "hosts": {
            h: {
                "address": "127.0.0.1",
                "port": int(ssh[h].rsplit(":", 1)[1]),
                "user": "root",
                "key_file": "run/ssh/id_ed25519",
                "known_hosts": "run/ssh/known_hosts",
            }
            for h in names
        },
        "probes": [
            {
                "name": "first-host-ssh",
                "role": "clinical",
                "tcp": {"host": "127.0.0.1", "port": int(ssh[names[0]].rsplit(":", 1)[1])},
            }
        ],
    }
    target = write_yaml(folder / "target.yaml", doc)
    for h in names:
        addr, port = ssh[h].rsplit(":", 1)
        ok = wait_for(lambda a=addr, p=int(port): _banner(a, p), 30, step=0.1)
        assert ok is not None, f"host {h} never answered on {ssh[h]}"
    return BareHosts(folder, target, project, names)


def _banner(addr: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((addr, port), 1.0) as s:
            s.settimeout(1.0)
            return s.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def down_bare_hosts(hosts: BareHosts) -> None:
    import docker

    client = docker.from_env(timeout=60)
    from wardehr.docker_stack import TARGET_LABEL

    for c in client.api.containers(all=True, filters={"label": f"{TARGET_LABEL}={hosts.project}"}):
        client.api.remove_container(c["Id"], force=True)
